"""Feature networks read as data: the fixtures' stand-ins give NVIDIA's recorded features, and files with
the structure of NVIDIA's inception-2015-12-05.pt / vgg16.pt and of pytorch-fid's state dict (built here
with random weights) map into our modules and compute what the files compute."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stylegan

from conftest import reference_path
from stylegan.data import ImageDataset
from stylegan.metrics import detectors, networks
from stylegan.metrics.detectors import load_detector


@pytest.fixture(scope="module")
def ref():
    with np.load(reference_path("metrics/metrics_dev.npz")) as z:
        return {k: z[k] for k in z.files}


def _real_images(n: int) -> torch.Tensor:
    ds = ImageDataset(reference_path("metrics/dataset_dev.zip"))
    return torch.from_numpy(np.stack([ds[i][0] for i in range(n)])).permute(0, 3, 1, 2).contiguous()


def test_standins_read_as_data_give_nvidias_features(ref):
    inception = load_detector(reference_path("metrics/inception_standin.pt"), "inception")
    vgg = load_detector(reference_path("metrics/vgg16_standin.pt"), "vgg16")
    assert isinstance(inception, networks.InceptionStandin) and isinstance(vgg, networks.VGG16Standin)
    real, gen = _real_images(64), torch.from_numpy(ref["gen_images_uint8"][:64])
    with torch.no_grad():
        np.testing.assert_allclose(inception.features(real).numpy(), ref["inception_real_features"][:64], atol=1e-5)
        np.testing.assert_allclose(inception.features(gen).numpy(), ref["inception_gen_features"][:64], atol=1e-5)
        probs = inception.probabilities(torch.from_numpy(ref["is_gen_images_uint8"][:64]))
        np.testing.assert_allclose(probs.numpy(), ref["is_gen_probs"][:64], atol=1e-6)
        vgg_gen = vgg.features(gen).half().float().numpy()
        np.testing.assert_allclose(vgg_gen, ref["vgg16_gen_features"][:64].astype(np.float32), rtol=2e-3, atol=1e-3)
    # The same weights as plain arrays (standins_weights.npz): the file held exactly these.
    with np.load(reference_path("metrics/standins_weights.npz")) as w:
        assert torch.equal(inception.fc_w, torch.from_numpy(w["inception/fc_w"]))
        assert torch.equal(vgg.lpips_net.convs[3].weight, torch.from_numpy(w["vgg16/w3"]))
        assert torch.equal(vgg.lpips_net.lin2, torch.from_numpy(w["vgg16/lin2"]))


def test_standin_lpips_matches_the_torchscript_run_with_trust_code():
    path = reference_path("metrics/vgg16_standin.pt")
    ours = load_detector(path, "vgg16")
    script = load_detector(path, "vgg16", trust_code=True)
    assert isinstance(script, detectors.ScriptDetector)
    x = torch.rand([3, 3, 16, 16], generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        torch.testing.assert_close(ours.lpips(x), script.lpips(x), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours.features(x), script.features(x), rtol=1e-5, atol=1e-5)


# --- files with the structure of NVIDIA's (random weights) -------------------------------------------

def _randomise(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith(".var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith((".shift", ".scale")):
                continue
            else:
                fan_in = t[0].numel() if t.ndim > 1 else 1
                t.copy_(torch.randn(t.shape, generator=g) / fan_in ** 0.5 * (0.1 if t.ndim == 1 else 1))
    return net


class _NvidiaInception(torch.nn.Module):
    """NVIDIA's inception-2015-12-05.pt interface over a traced layer stack named as in the file, with
    the input handling its code does (TF-1.x bilinear resize to 299, (x - 128) / 128), written here."""

    def __init__(self, layers: torch.nn.Module, output: torch.nn.Linear):
        super().__init__()
        self.layers, self.output = layers, output

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        n, c, h, w = img.shape
        x = img.to(torch.float32)
        theta = torch.eye(2, 3)
        theta[0, 2] += 1.0 / w - 1.0 / 299
        theta[1, 2] += 1.0 / h - 1.0 / 299
        grid = F.affine_grid(theta.unsqueeze(0).repeat([n, 1, 1]), [n, c, 299, 299], False)
        x = (F.grid_sample(x, grid, "bilinear", "border", False) - 128) / 128
        features = self.layers(x).reshape(-1, 2048)
        if return_features:
            return features
        bias = None if no_output_bias else self.output.bias
        return F.softmax(F.linear(features, self.output.weight, bias), 1)


@pytest.fixture(scope="module")
def nvidia_like_inception(tmp_path_factory):
    net = _randomise(networks.InceptionV3(), 1).eval()
    probe = torch.zeros([1, 3, 299, 299])
    layers = torch.jit.trace(net.layers, probe)
    script = torch.jit.script(_NvidiaInception(layers, net.output))
    path = tmp_path_factory.mktemp("detectors") / "inception-2015-12-05.pt"
    script.save(str(path))
    return path, net


def test_inception_with_nvidias_names_maps_by_name(nvidia_like_inception):
    path, original = nvidia_like_inception
    ours = load_detector(path, "inception")
    assert type(ours) is networks.InceptionV3
    for name, t in original.state_dict().items():
        assert torch.equal(ours.state_dict()[name], t), name
    x = torch.randint(0, 256, [1, 3, 40, 40], dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    file_net = torch.jit.load(str(path))
    with torch.no_grad():
        torch.testing.assert_close(ours.features(x), file_net(x, return_features=True), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours.probabilities(x), file_net(x, no_output_bias=True), rtol=1e-4, atol=1e-7)
        trusted = load_detector(path, "inception", trust_code=True)
        torch.testing.assert_close(trusted.features(x), file_net(x, return_features=True))


def test_inception_from_pytorch_fid_names_and_by_order(nvidia_like_inception, tmp_path):
    _, original = nvidia_like_inception
    state = original.state_dict()
    names = detectors._pytorch_fid_names(list(state))
    fid = {names[k]: v.clone() for k, v in state.items()}
    for k in [k for k in fid if k.endswith("bn.running_var")]:    # torchvision's BN also stores these
        fid[k.replace("running_var", "weight")] = torch.ones_like(fid[k])
        fid[k.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
    # One batch-norm scale other than one: folded exactly into the convolution.
    gamma = torch.linspace(0.5, 2, 32)
    fid["Conv2d_1a_3x3.bn.weight"] = gamma
    torch.save(fid, tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    ours = load_detector(tmp_path / "pt_inception-2015-12-05-6726825d.pth", "inception")
    x = torch.randn([2, 3, 21, 21])
    conv = original.layers.conv
    want = F.conv2d(x, conv.weight, None, 2)
    want = F.relu(F.batch_norm(want, conv.mean, conv.var, gamma, conv.beta, False, 0, 1e-3))
    torch.testing.assert_close(ours.layers.conv(x), want, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.layers.mixed_10.tower_2_conv.var, original.layers.mixed_10.tower_2_conv.var)
    # The names torchvision gives every tensor of the FID Inception (pytorch-fid loads it strictly).
    assert {n.split(".")[0] for n in fid} == {"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1",
                                            "Conv2d_4a_3x3", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                                            "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b",
                                            "Mixed_7c", "fc"}
    assert "Mixed_7c.branch3x3dbl_3b.conv.weight" in fid and "Mixed_6a.branch3x3dbl_3.bn.running_mean" in fid
    # Same tensors under unknown names, in our order: taken by order and shape.
    renamed = {f"t{i}": v for i, v in enumerate(state.values())}
    by_order = detectors.from_tensors(renamed, "inception")
    assert torch.equal(by_order.layers.mixed_7.tower_1.conv_3.weight, original.layers.mixed_7.tower_1.conv_3.weight)


class _NvidiaVGG(torch.nn.Module):
    """NVIDIA's vgg16.pt tensor names (layers.conv1..13, layers.fc1..3, lpips0..4) over our computation."""

    def __init__(self, net: networks.VGG16):
        super().__init__()
        self.layers = torch.nn.Module()
        for i, conv in enumerate(net.lpips_net.convs):
            setattr(self.layers, f"conv{i + 1}", conv)
        for k in (1, 2, 3):
            setattr(self.layers, f"fc{k}", getattr(net, f"fc{k}"))
        for t, lin in enumerate(net.lpips_net.lins):
            self.register_buffer(f"lpips{t}", lin.reshape(-1, 1, 1).clone())


def test_vgg16_with_nvidias_names():
    original = networks.VGG16().eval()          # its initialisers already gave it random weights
    with torch.no_grad():
        for lin in original.lpips_net.lins:
            lin.uniform_(0, 1)
    state = _NvidiaVGG(original).state_dict()
    assert {"layers.conv13.weight", "layers.fc3.bias", "lpips4"} <= set(state) and state["lpips0"].shape == (64, 1, 1)
    ours = detectors.from_tensors(state, "vgg16")
    for name, t in original.state_dict().items():
        assert torch.equal(ours.state_dict()[name], t), name
    x = torch.rand([1, 3, 32, 32], generator=torch.Generator().manual_seed(3)) * 255
    with torch.no_grad():
        torch.testing.assert_close(ours.lpips(x), original.lpips(x))


# --- wrong files -------------------------------------------------------------------------------------

def test_wrong_files_are_one_line(tmp_path):
    vgg_file = reference_path("metrics/vgg16_standin.pt")
    with pytest.raises(ValueError, match="the fixture's vgg16 stand-in .*, not the Inception"):
        load_detector(vgg_file, "inception")
    torch.save({"w": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other.pth: its 1 tensors fit no VGG16 .* detector layout"):
        load_detector(tmp_path / "other.pth", "vgg16")
    (tmp_path / "junk.pt").write_bytes(b"not a network at all")
    with pytest.raises(ValueError, match="junk.pt: not a feature network"):
        load_detector(tmp_path / "junk.pt", "inception")
    with pytest.raises(ValueError, match="a gan model, not a feature network"):
        load_detector("ffhq", "inception")
    state = networks.InceptionStandin().state_dict()
    state["fc_w"] = torch.full_like(state["fc_w"], float("nan"))
    with pytest.raises(ValueError, match="nan.pt: .* stand-in: fc_w holds NaN"):
        detectors.from_tensors(state, "inception", what="nan.pt")


def test_loading_draws_nothing_from_the_global_generator():
    torch.manual_seed(5)
    want = torch.rand(3)
    torch.manual_seed(5)
    load_detector(reference_path("metrics/inception_standin.pt"), "inception")
    assert torch.equal(torch.rand(3), want)


def test_files_known_by_sha256_are_read_as_the_layout_it_names(tmp_path, monkeypatch):
    """The stand-ins are recognised by their digest; a known digest alone decides the layout (a file of
    that digest whose tensors fit another layout is refused), and the wrong kind is said by name."""
    inception = load_detector(reference_path("metrics/inception_standin.pt"), "inception")
    assert inception.layout == "the fixture's inception stand-in (recognised by sha256)"
    assert inception.digest in detectors.known_files()
    with pytest.raises(ValueError, match=r"vgg16_standin.pt: the fixture's vgg16 stand-in \(recognised by its "
                                         r"sha256\), not the Inception"):
        load_detector(reference_path("metrics/vgg16_standin.pt"), "inception")
    # pytorch-fid's file, known by the registry's digest: mapped by that layout only.
    assert detectors.known_files()[stylegan.hub.lookup("pt-inception-2015-12-05").sha256] == \
        "pytorch-fid's pt_inception-2015-12-05"
    path = tmp_path / "standin_as_state_dict.pth"
    torch.save(networks.InceptionStandin().state_dict(), path)
    assert load_detector(path, "inception").layout == "the fixture's inception stand-in"     # unknown: by names
    import hashlib
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(detectors, "STANDIN_DIGESTS", {digest: "pytorch-fid's pt_inception-2015-12-05"})
    with pytest.raises(ValueError, match="its sha256 is that of pytorch-fid's pt_inception-2015-12-05, but its "
                                         "tensors do not fit it"):
        load_detector(path, "inception")
