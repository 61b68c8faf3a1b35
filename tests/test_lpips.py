"""LPIPS as our module: against the fixture's TorchScript stand-in, against LPIPS computed the way the
`lpips` package does (and the package itself where it runs), closed forms, and every way in through
`load_feature_net`. Weight files are random tensors under the real key names; nothing is downloaded."""
from __future__ import annotations

import warnings
from typing import List

import pytest
import torch
import torch.nn.functional as F

from stylegan import hub
from stylegan.inversion.features import LIN_ENTRY, TRUNK_ENTRY, TorchScriptFeatures, load_feature_net, lpips_vgg16
from stylegan.inversion.lpips import (LPIPS, LPIPS_SCALE, LPIPS_SHIFT, VGG16, Trunk, from_state_dicts,
                                      from_torchscript, lin_keys)
from stylegan.loaders.torchscript import UntrustedCodeError

from conftest import load_npz, reference_path
from standins import STANDIN, standin_lpips

# VGG16's layout at an eighth of its widths: the same keys and arithmetic, a fraction of the time.
NARROW = Trunk(stages=((8, 8), (16, 16), (32, 32, 32), (64, 64, 64), (64, 64, 64)), pool="max")


def layer_list(trunk: Trunk) -> list:
    """torchvision's `features` configuration: conv widths, 'M' for max pooling."""
    return [v for s, stage in enumerate(trunk.stages) for v in (["M"] if s else []) + list(stage)]


def random_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand([n, 3, size, size], generator=torch.Generator().manual_seed(seed)) * 255


def random_vgg16_state(trunk_spec: Trunk = VGG16, seed: int = 0):
    """torchvision- and lpips-keyed state dicts of random weights (He-scaled so activations stay alive)."""
    g = torch.Generator().manual_seed(seed)
    trunk, cin, i = {}, 3, 0
    for v in layer_list(trunk_spec):
        if v == "M":
            i += 1
            continue
        trunk[f"features.{i}.weight"] = torch.randn([v, cin, 3, 3], generator=g) * (2 / (9 * cin)) ** 0.5
        trunk[f"features.{i}.bias"] = torch.randn([v], generator=g) * 0.1
        cin, i = v, i + 2
    trunk["classifier.0.weight"] = torch.zeros([4, 8])        # the ImageNet head, which LPIPS ignores
    lin = {f"lin{t}.model.1.weight": torch.rand([1, c, 1, 1], generator=g) for t, c in enumerate(trunk_spec.taps)}
    return trunk, lin


def lpips_distance_reference(trunk: dict, lin: dict, x: torch.Tensor, y: torch.Tensor,
                             spec: Trunk = VGG16) -> torch.Tensor:
    """LPIPS the way the `lpips` package computes it, over torchvision's layer list: inputs to -1..1 and
    scaled, features unit-normalised (eps outside the root), squared differences weighted by the 1x1
    lin convolution and averaged over space, summed over the five taps (after each stage's last ReLU)."""
    shift = torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1)
    feats = []
    for img in (x, y):
        h, i, taps = ((img / 127.5 - 1) - shift) / scale, 0, []
        for v in layer_list(spec) + ["M"]:
            if v == "M":
                taps.append(h)
                h, i = F.max_pool2d(h, 2), i + 1
            else:
                h, i = F.relu(F.conv2d(h, trunk[f"features.{i}.weight"], trunk[f"features.{i}.bias"], padding=1)), i + 2
        feats.append(taps)
    total = 0
    for t, (a, b) in enumerate(zip(*feats)):
        a = a / (a.square().sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.square().sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + F.conv2d((a - b).square(), lin[f"lin{t}.model.1.weight"]).mean(dim=[1, 2, 3])
    return total


def dist(net, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (net(x) - net(y)).square().sum(dim=1)


@pytest.fixture(scope="module")
def vgg16_files(tmp_path_factory):
    """The two real file layouts, with random weights: vgg16-397923af.pth and lpips's vgg.pth."""
    folder = tmp_path_factory.mktemp("lpips")
    trunk, lin = random_vgg16_state()
    torch.save(trunk, folder / "vgg16-397923af.pth")
    torch.save(lin, folder / "vgg.pth")
    return folder / "vgg16-397923af.pth", folder / "vgg.pth", trunk, lin


@pytest.fixture(scope="module")
def narrow():
    return random_vgg16_state(NARROW, seed=1)


# --- the fixture's stand-in -------------------------------------------------------------------------

def test_standin_arrays_match_its_torchscript():
    # The fixture's file is not a known one: it runs only on the caller's word, as itself.
    with pytest.raises(UntrustedCodeError, match="trust_code=True"):
        load_feature_net(reference_path("lpips_standin.pt"))
    ts = load_feature_net(reference_path("lpips_standin.pt"), trust_code=True)
    assert isinstance(ts, TorchScriptFeatures)        # not the VGG16 layout: run as TorchScript
    x = torch.cat([random_images(3, 32), torch.from_numpy(load_npz("projector_sg2ada_skip")["target_uint8"])[None]
                   .float()])
    with torch.no_grad():
        torch.testing.assert_close(standin_lpips()(x), ts(x), rtol=0, atol=1e-5)


def test_standin_torchscript_maps_onto_our_module():
    # The order-and-shape mapping, checked on a real TorchScript file: it finds the stand-in's input
    # scaling among the candidates; told the wrong pooling, it refuses with one warning.
    script = torch.jit.load(str(reference_path("lpips_standin.pt")))
    net = from_torchscript(script, STANDIN)
    assert isinstance(net, LPIPS)
    x = random_images(2, 32, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(net(x), script(x, resize_images=False, return_lpips=True), rtol=0, atol=1e-5)
    with pytest.warns(RuntimeWarning) as record:
        assert from_torchscript(script, Trunk(STANDIN.stages, pool="max")) is None
    assert len(record) == 1
    assert from_torchscript(script, VGG16) is None    # other tensors: silently not ours


# --- VGG16 from torchvision + lpips state dicts ----------------------------------------------------

def test_vgg16_state_dicts_give_lpips_distance(vgg16_files, narrow):
    trunk_path, lin_path, trunk, lin = vgg16_files
    net = lpips_vgg16(trunk=trunk_path, lin=lin_path)
    x, y = random_images(1, 32, seed=1), random_images(1, 32, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(dist(net, x, y), lpips_distance_reference(trunk, lin, x, y), rtol=1e-5, atol=0)
        assert net(x).shape == (1, sum(net.tap_sizes(32, 32)))
        # The same arithmetic on a narrow trunk of the same layout, a batch at a time.
        x, y = random_images(3, 48, seed=1), random_images(3, 48, seed=2)
        small = from_state_dicts(*narrow, trunk=NARROW)
        torch.testing.assert_close(dist(small, x, y), lpips_distance_reference(*narrow, x, y, NARROW), rtol=1e-5,
                                   atol=0)
    # One file holding both halves is the same network.
    both = trunk_path.parent / "both.pth"
    torch.save({**trunk, **lin}, both)
    assert same_weights(load_feature_net(both), net)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_registry_names_use_local_copies(vgg16_files, tmp_path, monkeypatch):
    # 'lpips-vgg' and each half's registry name resolve through the hub: the trunk from torch.hub's
    # checkpoint folder, the lin layers from the cache (or the lpips package when installed). No download.
    trunk_path, lin_path, trunk, lin = vgg16_files
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "vgg16-397923af.pth").symlink_to(trunk_path)
    cache = tmp_path / "cache"
    dest = hub.entry_path(hub.lookup(LIN_ENTRY), cache)
    dest.parent.mkdir(parents=True)
    dest.symlink_to(lin_path)
    expected = lpips_vgg16(trunk_path, hub.resolve(LIN_ENTRY, cache, progress=False))
    for name in ("lpips-vgg", "LPIPS-VGG", TRUNK_ENTRY, LIN_ENTRY):
        net = load_feature_net(name, cache_dir=cache, progress=False)
        assert isinstance(net, LPIPS) and same_weights(net, expected), name


@pytest.mark.slow
def test_closed_forms(narrow):
    net = from_state_dicts(*narrow, trunk=NARROW)
    x, y = random_images(2, 32, seed=5), random_images(2, 32, seed=6)
    lins = [v.clone() for v in net.lins]
    with torch.no_grad():
        d = dist(net, x, y)
        assert float(dist(net, x, x).abs().max()) == 0.0           # an image is at distance 0 from itself
        parts = []
        for t in range(5):
            # Zeroing the other taps leaves one tap's contribution; scaling its lin by k scales it by k.
            for u, lin in enumerate(net.lins):
                lin.copy_(lins[u] if u == t else 0 * lins[u])
            parts.append(dist(net, x, y))
            assert float(parts[-1].min()) > 0
            k = 1 + t / 2
            net.lins[t].mul_(k)
            torch.testing.assert_close(dist(net, x, y), k * parts[-1], rtol=1e-5, atol=0)
        torch.testing.assert_close(sum(parts), d, rtol=1e-5, atol=0)     # the taps add up to the whole


@pytest.mark.parametrize("case", ["missing", "extra", "misshaped", "negative", "lin-missing", "lin-extra"])
def test_bad_state_dicts(narrow, case):
    trunk, lin = dict(narrow[0]), dict(narrow[1])
    key = {"missing": "features.12.bias", "extra": "features.30.weight", "misshaped": "features.5.weight",
           "negative": "lin2.model.1.weight", "lin-missing": "lin4.model.1.weight",
           "lin-extra": "lin5.model.1.weight"}[case]
    if case in ("missing", "lin-missing"):
        (trunk if key in trunk else lin).pop(key)
    elif case == "extra":
        trunk[key] = torch.zeros([1])
    elif case == "lin-extra":
        lin[key] = torch.zeros([1, 4, 1, 1])
    elif case == "misshaped":
        trunk[key] = trunk[key][:, :-1]
    else:
        lin[key] = -lin[key]
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as info:
        from_state_dicts(trunk, lin, NARROW)
    assert "\n" not in str(info.value)


def test_bad_files(vgg16_files, tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a network")
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, other)
    bad_lin = tmp_path / "vgg.pth"
    torch.save({"lin0.model.1.weight": torch.zeros([1, 64, 1, 1])}, bad_lin)
    for path, words in ((junk, "not a state dict"), (other, "neither TorchScript"),
                        (tmp_path / "absent.pt", "no such file")):
        with pytest.raises(ValueError, match=words) as info:
            load_feature_net(path)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"missing key 'lin1\.model\.1\.weight'"):
        lpips_vgg16(trunk=vgg16_files[0], lin=bad_lin)
    # TorchScript of another interface, or with other outputs: refused when loaded (and run, trusted).
    for module, words in ((torch.nn.Identity(), "does not run as"), (Flat(), "expected features")):
        path = tmp_path / "other.pt"
        torch.jit.script(module).save(str(path))
        with pytest.raises(ValueError, match=words) as info:
            load_feature_net(path, trust_code=True)
        assert "\n" not in str(info.value)


class Flat(torch.nn.Module):
    def forward(self, img: torch.Tensor, resize_images: bool = False, return_lpips: bool = True) -> torch.Tensor:
        return img.flatten()


# --- NVIDIA's TorchScript layout --------------------------------------------------------------------

class ScriptedVGG16(torch.nn.Module):
    """A TorchScript module with vgg16.pt's interface, written apart from ours: buffers for the input
    scaling, lin weights as [1, C, 1, 1], and a pooling that can be made wrong."""

    def __init__(self, trunk: dict, lin: dict, max_pool: bool):
        super().__init__()
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.max_pool = max_pool
        for t in range(5):
            self.register_buffer(f"lin{t}", lin[f"lin{t}.model.1.weight"].clone())
        convs = []
        for i in VGG16.torchvision_indices():
            w = trunk[f"features.{i}.weight"]
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(trunk[f"features.{i}.bias"])
            convs.append(conv)
        self.convs = torch.nn.ModuleList(convs)

    def forward(self, img: torch.Tensor, resize_images: bool = False, return_lpips: bool = True) -> torch.Tensor:
        x = (img / 127.5 - 1 - self.shift) / self.scale
        lins = [self.lin0, self.lin1, self.lin2, self.lin3, self.lin4]
        out: List[torch.Tensor] = []
        for i, conv in enumerate(self.convs):
            if i in [2, 4, 7, 10]:
                x = F.max_pool2d(x, 2) if self.max_pool else F.avg_pool2d(x, 2)
            x = F.relu(conv(x))
            if i in [1, 3, 6, 9, 12]:
                n = x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10)
                n = n * lins[len(out)].sqrt() / float(x.shape[2] * x.shape[3]) ** 0.5
                out.append(n.flatten(1))
        return torch.cat(out, 1)


def test_vgg16_torchscript_runs_as_our_module(vgg16_files, tmp_path):
    _, _, trunk, lin = vgg16_files
    x = random_images(2, 32, seed=7)
    for max_pool in (True, False):
        script = torch.jit.script(ScriptedVGG16(trunk, lin, max_pool))
        path = tmp_path / f"vgg16_{max_pool}.pt"
        script.save(str(path))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net = load_feature_net(path, trust_code=True)
        record = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        if max_pool:     # the real VGG16: ours, quietly
            assert isinstance(net, LPIPS) and not record
            with torch.no_grad():
                torch.testing.assert_close(net(x), script(x, resize_images=False, return_lpips=True),
                                           rtol=1e-5, atol=1e-7)
        else:            # fits by shape, not by arithmetic: the TorchScript itself, one warning
            assert isinstance(net, TorchScriptFeatures) and net.net is not None and len(record) == 1


class NvidiaLayoutVGG16(torch.nn.Module):
    """NVIDIA's vgg16.pt as its publishers describe it, written apart from ours: its state_dict names
    (layers.conv1..13, lpips0..4 as [C, 1, 1]), its call interface, ImageNet's mean and std on 0..1
    images, max pooling. With `victim`, its forward also overwrites that file: running it shows."""

    def __init__(self, trunk: dict, lin: dict, victim: str = ""):
        super().__init__()
        self.victim = victim
        self.layers = torch.nn.Module()
        for n, i in enumerate(VGG16.torchvision_indices()):
            w = trunk[f"features.{i}.weight"]
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(trunk[f"features.{i}.bias"])
            setattr(self.layers, f"conv{n + 1}", conv)
        for t in range(5):
            self.register_buffer(f"lpips{t}", lin[f"lin{t}.model.1.weight"].reshape(-1, 1, 1).clone())

    def tap(self, x: torch.Tensor, lin: torch.Tensor) -> torch.Tensor:
        n = x / (x.square().sum(1, keepdim=True) + 1e-10).sqrt()
        return (n * lin[None].sqrt() / float(x.shape[2] * x.shape[3]) ** 0.5).flatten(1)

    def forward(self, img: torch.Tensor, resize_images: bool = False, return_lpips: bool = True) -> torch.Tensor:
        if self.victim != "":
            torch.from_file(self.victim, shared=True, size=4, dtype=torch.uint8).fill_(88)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = (img / 255 - mean) / std
        c = self.layers
        x = F.relu(c.conv2(F.relu(c.conv1(x))))
        f0 = self.tap(x, self.lpips0)
        x = F.relu(c.conv4(F.relu(c.conv3(F.max_pool2d(x, 2)))))
        f1 = self.tap(x, self.lpips1)
        x = F.relu(c.conv7(F.relu(c.conv6(F.relu(c.conv5(F.max_pool2d(x, 2)))))))
        f2 = self.tap(x, self.lpips2)
        x = F.relu(c.conv10(F.relu(c.conv9(F.relu(c.conv8(F.max_pool2d(x, 2)))))))
        f3 = self.tap(x, self.lpips3)
        x = F.relu(c.conv13(F.relu(c.conv12(F.relu(c.conv11(F.max_pool2d(x, 2)))))))
        f4 = self.tap(x, self.lpips4)
        return torch.cat([f0, f1, f2, f3, f4], 1)


def known_as(monkeypatch, name: str, path) -> None:
    """Make the registry entry `name` the file at `path` (by its sha256), as the real file is."""
    import dataclasses
    import hashlib
    from stylegan.hub import registry
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(registry, "ENTRIES", tuple(dataclasses.replace(e, sha256=digest) if e.name == name else e
                                                   for e in registry.ENTRIES))


def test_known_vgg16_file_is_read_not_run(vgg16_files, tmp_path, monkeypatch):
    # NVIDIA's vgg16.pt is recognised by its sha256 and its tensors taken by name into our module:
    # the features equal what the file computes, and nothing in it runs (its forward would overwrite
    # the victim). Unknown, the same file is refused in one line until the caller trusts its code.
    _, _, trunk, lin = vgg16_files
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"safe")
    path = tmp_path / "vgg16.pt"
    torch.jit.script(NvidiaLayoutVGG16(trunk, lin, str(victim))).save(str(path))
    with pytest.raises(UntrustedCodeError) as info:
        load_feature_net(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value) and victim.read_bytes() == b"safe"
    known_as(monkeypatch, "vgg16", path)
    net = load_feature_net(path)
    assert isinstance(net, LPIPS) and victim.read_bytes() == b"safe"
    x = random_images(2, 32, seed=11)
    with torch.no_grad():
        got = net(x)
        want = NvidiaLayoutVGG16(trunk, lin)(x)     # the same computation, run here as Python
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    # A known digest whose tensors are not vgg16.pt's is named, not half-loaded.
    other = tmp_path / "other.pt"
    torch.jit.script(Flat()).save(str(other))
    known_as(monkeypatch, "vgg16", other)
    with pytest.raises(ValueError, match="vgg16 by its digest, but it lacks layers.conv1.weight"):
        load_feature_net(other)


# --- the lpips package, where it runs ---------------------------------------------------------------

def _lpips_package():
    try:
        import lpips
        return lpips
    except Exception:       # absent, or torchvision built for another torch
        return None


@pytest.mark.skipif(_lpips_package() is None, reason="lpips (with a working torchvision) not installed")
def test_matches_the_lpips_package():
    lpips = _lpips_package()
    ref = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval()
    state = ref.state_dict()
    # lpips keeps torchvision's layer indices inside its slices: net.sliceK.<index>.weight.
    trunk = {"features." + k.split(".", 2)[2]: v for k, v in state.items() if k.startswith("net.slice")}
    lin = {k: v for k, v in state.items() if k in lin_keys()}       # its ModuleList repeats them as lins.T
    net = from_state_dicts(trunk, lin)
    x, y = random_images(2, 32, seed=8), random_images(2, 32, seed=9)
    with torch.no_grad():
        want = ref(x / 127.5 - 1, y / 127.5 - 1).flatten()
        torch.testing.assert_close(dist(net, x, y), want, rtol=1e-5, atol=1e-7)


# --- the CLI ------------------------------------------------------------------------------------------

def test_project_cli_takes_lpips_files_and_refuses_other_models(vgg16_files, tmp_path):
    from click.testing import CliRunner
    from PIL import Image
    from scripts.cli import main
    trunk_path, lin_path, trunk, lin = vgg16_files
    both = tmp_path / "lpips_vgg16.pth"
    torch.save({**trunk, **lin}, both)
    target = tmp_path / "t.png"
    Image.fromarray((random_images(1, 32, seed=10)[0].permute(1, 2, 0)).to(torch.uint8).numpy()).save(target)
    net = reference_path("sg2ada_skip.pkl")

    def run(loss):
        return CliRunner().invoke(main, ["project", "--network", str(net), "--target", str(target), "--outdir",
                                         str(tmp_path / "o"), "--steps", "2", "--no-identity", "--loss", loss])
    r = run(str(both))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "t.w.safetensors").is_file()
    r = run("stylegan2-ada-ffhq")        # a GAN: refused by name, before any download
    assert r.exit_code != 0 and "not a perceptual network" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
