"""Latent files: our format round-trips bit-exactly; NVIDIA's and plain numpy files load; digests."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import stylegan
from stylegan.io import check_compatible, load_latents, save_latents
from stylegan.networks.styles import ws_to_styles
from torch_utils.misc import network_digest



def test_round_trip(tmp_path, G):
    ws = torch.randn(3, G.num_ws, G.w_dim)
    path = save_latents(tmp_path / "a.w.safetensors", ws, space="w+", network_digest=network_digest(G), psi=0.7,
                        source="seeds 0-2", extra={"note": "x"})
    got = load_latents(path)
    assert torch.equal(got.ws, ws) and got.space == "w+" and got.psi == 0.7 and got.source == "seeds 0-2"
    assert got.metadata == {"note": "x"} and got.network_digest == network_digest(G)
    assert check_compatible(got, G, network_digest(G)) == []
    with pytest.raises(FileExistsError):
        save_latents(path, ws)
    w = torch.randn(2, G.w_dim)
    assert torch.equal(load_latents(save_latents(tmp_path / "w.safetensors", w, space="w")).ws, w)
    styles = ws_to_styles(G, ws)
    s = load_latents(save_latents(tmp_path / "s.safetensors", styles, space="s"))
    assert list(s.styles) == list(styles) and all(torch.equal(s.styles[k], v) for k, v in styles.items())
    check_compatible(s, G)


def test_nvidia_and_numpy_files(tmp_path, G):
    w = np.random.default_rng(0).normal(size=[1, G.num_ws, G.w_dim]).astype(np.float32)
    np.savez(tmp_path / "projected_w.npz", w=w)                # NVIDIA projector.py's layout
    got = load_latents(tmp_path / "projected_w.npz")
    assert got.space == "w+" and np.array_equal(got.ws.numpy(), w)
    np.save(tmp_path / "one.npy", w[0, 0])
    assert load_latents(tmp_path / "one.npy").ws.shape == (1, G.w_dim)
    np.save(tmp_path / "plus.npy", w[0])
    assert load_latents(tmp_path / "plus.npy", num_ws=G.num_ws).space == "w+"
    assert load_latents(tmp_path / "plus.npy").space == "w"  # without num_ws: N w's


def test_mismatch_and_bad_files(tmp_path, G):
    lat = load_latents(save_latents(tmp_path / "a.safetensors", torch.randn(1, 5, G.w_dim)))
    with pytest.raises(ValueError, match="ws rows"):
        check_compatible(lat, G)
    other = load_latents(save_latents(tmp_path / "b.safetensors", torch.randn(1, G.w_dim + 1), space="w"))
    with pytest.raises(ValueError, match="w_dim"):
        check_compatible(other, G)
    warn = load_latents(save_latents(tmp_path / "c.safetensors", torch.randn(1, G.w_dim), space="w",
                                     network_digest="0" * 64))
    with pytest.raises(ValueError, match="made for another network .digest 000000000000.*force=True"):
        check_compatible(warn, G, network_digest(G))
    assert "another network" in check_compatible(warn, G, network_digest(G), force=True)[0]
    (tmp_path / "t.txt").write_text("hello there")
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    np.save(tmp_path / "i.npy", np.zeros(3, np.int64))
    good = (tmp_path / "a.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(good[:len(good) // 2])
    for name, message in {"missing": "no such file", "t.txt": "not a latent", "x.npz": "'w'",
                          "i.npy": "floating", "cut.safetensors": "truncated or corrupt"}.items():
        with pytest.raises(ValueError, match=message) as e:
            load_latents(tmp_path / name)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="latent space"):
        save_latents(tmp_path / "z.safetensors", torch.zeros(1, 4), space="z")


def test_digest_follows_the_weights(tmp_path, G):
    d = network_digest(G)
    assert d == network_digest(G) and len(d) == 64
    path = stylegan.save({"G_ema": G}, tmp_path / "g.stylegan")
    assert network_digest(stylegan.load(path)["G_ema"]) == d         # a round trip keeps it
    other = stylegan.load(path)["G_ema"]
    with torch.no_grad():
        other.synthesis.b4.conv1.bias[0] += 1e-6                       # one weight, a hair
    assert network_digest(other) != d


def test_older_seed_files_and_expected_shapes(tmp_path, G):
    w = np.random.default_rng(1).normal(size=[G.num_ws, G.w_dim]).astype(np.float32)
    np.save(tmp_path / "seed0042.w.npy", w)              # what generate --save-w wrote: one seed's ws
    got = load_latents(tmp_path / "seed0042.w.npy")
    assert got.space == "w+" and np.array_equal(got.ws.numpy(), w[None])
    np.save(tmp_path / "many.npy", w)                     # any other name: N w's, unless num_ws says otherwise
    assert load_latents(tmp_path / "many.npy").ws.shape == (G.num_ws, G.w_dim)
    for name, kwargs, message in [("seed0042.w.npy", {"w_dim": G.w_dim + 1}, "w_dim"),
                                  ("seed0042.w.npy", {"num_ws": G.num_ws + 2}, "ws rows")]:
        with pytest.raises(ValueError, match=message) as e:
            load_latents(tmp_path / name, **kwargs)
        assert str(e.value).startswith(str(tmp_path / name))
    w[3, 5] = np.nan
    np.save(tmp_path / "nan.npy", w)
    with pytest.raises(ValueError, match="nan or inf"):
        load_latents(tmp_path / "nan.npy")
    np.save(tmp_path / "empty.npy", np.zeros([0, G.w_dim], np.float32))
    with pytest.raises(ValueError, match="empty"):
        load_latents(tmp_path / "empty.npy")


def test_save_makes_folders_and_checks_metadata(tmp_path, G):
    ws = torch.randn(1, G.num_ws, G.w_dim)
    path = save_latents(tmp_path / "a" / "b" / "x.safetensors", ws, network_digest="f" * 64)
    assert torch.equal(load_latents(path).ws, ws)
    with pytest.raises(ValueError, match="JSON"):
        save_latents(tmp_path / "y.safetensors", ws, extra={"bad": object()})
    assert not (tmp_path / "y.safetensors").exists() and not list(tmp_path.glob(".*"))
    # Without a digest from the caller, check_compatible computes G's own to compare.
    assert "another network" in check_compatible(load_latents(path), G, force=True)[0]
    tuned = save_latents(tmp_path / "t.safetensors", ws, network_digest="f" * 64,
                         extra={"network_digests": [network_digest(G)]})       # a pivot and its tuned copy
    assert check_compatible(load_latents(tuned), G) == []
    same = save_latents(tmp_path / "z.safetensors", ws, network_digest=network_digest(G))
    assert check_compatible(load_latents(same), G) == []
