"""stylegan.load on every fixture format, the own format's round trip, and bad files."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import stylegan
from scripts.cli import main
from stylegan import LoadError

from conftest import IMG_ATOL, NVIDIA_FIXTURES, load_npz, prefixed, reference_path

FAMILY = {"sg2ada_skip": "stylegan2", "sg2ada_resnet_cond": "stylegan2", "sg2ada_orig": "stylegan2",
          "sg3_sg2": "stylegan2", "sg3_t": "stylegan3", "sg3_r": "stylegan3", "tf_sg2": "stylegan2"}


def images(G, npz, psi=0.7):
    z, c = torch.from_numpy(npz["z"]), torch.from_numpy(npz["c"])
    with torch.no_grad():
        return torch.cat([G(z[i:i + 1], c[i:i + 1], truncation_psi=psi, noise_mode="const") for i in range(4)])


@pytest.mark.parametrize("name", NVIDIA_FIXTURES + ["tf_sg2"])
def test_pickles_load_as_reference(name):
    nets = stylegan.load(reference_path(f"{name}.pkl"))
    npz = load_npz(name)
    assert nets.format == ("tf-pickle" if name == "tf_sg2" else "nvidia-pickle")
    assert set(nets) == {"G", "D", "G_ema"} and nets.source == str(reference_path(f"{name}.pkl"))
    G = nets["G_ema"]
    assert nets.generator is G and nets.G_ema is G
    assert G.arch == FAMILY[name] and nets["D"].arch == "stylegan2_discriminator"
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    want = prefixed(npz, "G")
    got = G.state_dict()
    assert list(got) == list(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    # The training-time G is a different network: picking it instead of G_ema must be visible.
    assert any(not torch.equal(nets["G"].state_dict()[k], want[k]) for k in want)
    np.testing.assert_allclose(images(G, npz).numpy(), npz["img_psi0.7_const"], atol=IMG_ATOL, rtol=0)
    if "D/b4.out.bias" in npz:
        for k, v in prefixed(npz, "D").items():
            assert torch.equal(nets["D"].state_dict()[k], v), k
    if name != "tf_sg2":
        assert nets.metadata["training_set_kwargs"]["resolution"] == 32
        assert "augment_pipe_kwargs" in nets.metadata and "augment_pipe_kwargs" not in nets


def test_rosinality_checkpoint():
    nets = stylegan.load(reference_path("rosinality.pt"))
    npz = load_npz("rosinality")
    assert nets.format == "rosinality" and set(nets) == {"G_ema"} and nets.metadata == {}
    G = nets["G_ema"]
    assert G.num_ws == 8 and G.img_resolution == 32
    torch.testing.assert_close(G.mapping.w_avg, torch.from_numpy(npz["latent_avg"]), atol=0, rtol=0)
    z = torch.from_numpy(npz["z"]).float()
    with torch.no_grad():
        for t in (1.0, 0.7):
            ws = torch.cat([G.mapping(z[i:i + 1], None, truncation_psi=t) for i in range(4)])
            np.testing.assert_allclose(ws.numpy(), npz[f"ws_trunc{t}"], atol=IMG_ATOL, rtol=0)
            img = torch.cat([G.synthesis(ws[i:i + 1], noise_mode="const") for i in range(4)])
            np.testing.assert_allclose(img.numpy(), npz[f"img_trunc{t}"], atol=IMG_ATOL, rtol=0)
        img = G.synthesis(torch.from_numpy(npz["ws_mix"]), noise_mode="const")
    np.testing.assert_allclose(img.numpy(), npz["img_mix"], atol=IMG_ATOL, rtol=0)


def test_rosinality_training_checkpoint_with_args(tmp_path):
    """Training checkpoints hold g, g_ema, an argparse Namespace and no latent_avg."""
    import argparse
    ckpt = torch.load(reference_path("rosinality.pt"), weights_only=True)
    path = tmp_path / "train.pt"
    torch.save({"g": ckpt["g_ema"], "g_ema": ckpt["g_ema"], "args": argparse.Namespace(size=32, n_mlp=8),
                "ada_aug_p": 0.1}, path)
    nets = stylegan.load(path)
    assert {"G", "G_ema"} <= set(nets)
    # No stored average: it is estimated, so it lies near the mean of mapped latents.
    G = nets["G_ema"]
    z = torch.randn(2000, G.z_dim)
    with torch.no_grad():
        mean = G.mapping(z, None)[:, 0].mean(0)
    assert (G.mapping.w_avg - mean).norm() < 0.1 * mean.norm()


@pytest.mark.parametrize("name", ["sg2ada_resnet_cond", "sg3_r", "tf_sg2"])
def test_native_round_trip(tmp_path, name):
    nets = stylegan.load(reference_path(f"{name}.pkl"))
    path = stylegan.save(nets, tmp_path / "model.stylegan")
    assert b"\x80\x04\x95" not in path.read_bytes()[:64]   # a JSON header, not a pickle
    again = stylegan.load(path)
    assert again.format == "stylegan"
    for key in ("G", "D", "G_ema"):
        a, b = nets[key].state_dict(), again[key].state_dict()
        assert list(a) == list(b)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert again.metadata == nets.metadata
    npz = load_npz(name)
    assert torch.equal(images(nets["G_ema"], npz), images(again["G_ema"], npz))
    with pytest.raises(FileExistsError):
        stylegan.save(nets, path)
    stylegan.save(nets, path, overwrite=True)


def test_native_file_has_no_pickle_opcodes(tmp_path):
    nets = stylegan.load(reference_path("sg2ada_skip.pkl"))
    path = stylegan.save({"G_ema": nets["G_ema"]}, tmp_path / "g.stylegan")
    n = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + n])
    assert header["__metadata__"]["format"] == "stylegan"
    assert all(v.get("dtype") for k, v in header.items() if k != "__metadata__")


@pytest.mark.parametrize("make, reason", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("hello, I am a text file\n"), "a text file, not a model file"),
    (lambda p: p.write_bytes(np.random.RandomState(0).bytes(4096)), "a file of unknown format"),
])
def test_bad_files(tmp_path, make, reason):
    path = tmp_path / "net.pkl"
    make(path)
    with pytest.raises(LoadError, match=reason) as e:
        stylegan.load(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["sg2ada_skip.pkl", "sg3_t.pkl", "tf_sg2.pkl", "rosinality.pt"])
@pytest.mark.parametrize("fraction", [0.001, 0.3, 0.9, 0.9999])
def test_truncated_files(tmp_path, name, fraction):
    data = reference_path(name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(LoadError, match="truncated or corrupt|unknown format") as e:
        stylegan.load(path)
    assert "\n" not in str(e.value)


def test_corrupt_zip_member(tmp_path):
    src = reference_path("rosinality.pt")
    path = tmp_path / "bad.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("data.pkl"):
                data = data[: len(data) // 2]
            zout.writestr(item, data)
    with pytest.raises(LoadError, match="truncated or corrupt"):
        stylegan.load(path)


def test_unsupported_architecture(tmp_path):
    """A pickle whose generator has neither StyleGAN2 nor StyleGAN3 layers."""
    import pickle
    from stylegan.loaders import safe_pickle
    data = safe_pickle.safe_load(open(reference_path("sg2ada_skip.pkl"), "rb"))
    data["G_ema"].state["_modules"]["synthesis"].state["_modules"] = {}
    with pytest.raises(ValueError, match="unknown family"):
        from stylegan.loaders import nvidia
        nvidia.convert(data)
    del pickle


def test_info_command_on_every_fixture():
    runner = CliRunner()
    for name in [f"{n}.pkl" for n in NVIDIA_FIXTURES] + ["tf_sg2.pkl", "rosinality.pt"]:
        r = runner.invoke(main, ["info", str(reference_path(name))])
        assert r.exit_code == 0, r.output
        assert "32x32x3" in r.output and "num_ws" in r.output
    r = runner.invoke(main, ["info", str(reference_path("sg3_r.pkl"))])
    assert "StyleGAN3-R generator" in r.output and "StyleGAN2 discriminator (resnet)" in r.output
    r = runner.invoke(main, ["info", str(reference_path("sg2ada_orig.pkl"))])
    assert "StyleGAN2 generator (orig)" in r.output and "nvidia-pickle" in r.output


def test_installed_command_errors_in_one_line(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04garbage")
    proc = subprocess.run([sys.executable, "-m", "scripts.cli", "info", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "bad.pkl" in proc.stderr and "Traceback" not in proc.stderr
    ok = subprocess.run(["stylegan", "info", str(reference_path("sg3_t.pkl"))], capture_output=True, text=True)
    assert ok.returncode == 0 and "StyleGAN3-T generator" in ok.stdout
    assert "Examples" in subprocess.run(["stylegan", "info", "--help"], capture_output=True, text=True).stdout
