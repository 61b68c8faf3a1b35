"""StyleGAN2 generator and discriminator against NVIDIA's outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stylegan
from stylegan.images import to_uint8
from stylegan.loaders.kwargs import canonical_kwargs

from conftest import IMG_ATOL, SG2_FIXTURES, assert_uint8_matches, init_kwargs, load_npz, prefixed, reference_path

FIXTURES = SG2_FIXTURES + ["tf_sg2"]


def build(name: str):
    npz = load_npz(name)
    G = stylegan.create_model("stylegan2", **canonical_kwargs("stylegan2", init_kwargs(npz))).eval()
    G.load_state_dict(prefixed(npz, "G"), strict=True)
    return G, npz


def per_seed(fn, npz):
    z, c = torch.from_numpy(npz["z"]), torch.from_numpy(npz["c"])
    return torch.cat([fn(z[i:i + 1], c[i:i + 1]) for i in range(len(z))])


@pytest.mark.parametrize("name", FIXTURES)
def test_state_dict_names_and_order(name):
    npz = load_npz(name)
    G = stylegan.create_model("stylegan2", **canonical_kwargs("stylegan2", init_kwargs(npz)))
    want = prefixed(npz, "G")
    got = G.state_dict()
    assert list(got) == list(want)
    assert all(got[k].shape == want[k].shape for k in want)


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_mapping_matches(name, psi):
    G, npz = build(name)
    with torch.no_grad():
        ws = per_seed(lambda z, c: G.mapping(z, c, truncation_psi=psi), npz)
    np.testing.assert_allclose(ws.numpy(), npz[f"ws_psi{psi}"], atol=IMG_ATOL, rtol=0)


@pytest.mark.parametrize("name", FIXTURES)
def test_images_match(name):
    G, npz = build(name)
    with torch.no_grad():
        for psi in (1.0, 0.7):
            for mode in ("const", "none"):
                img = per_seed(lambda z, c: G(z, c, truncation_psi=psi, noise_mode=mode), npz)
                np.testing.assert_allclose(img.numpy(), npz[f"img_psi{psi}_{mode}"], atol=IMG_ATOL, rtol=0)
                if (psi, mode) == (0.7, "const"):
                    assert_uint8_matches(to_uint8(img), npz[f"img_psi{psi}_{mode}"])
        # One batch of four stays within the same tolerance (batching changes rounding only).
        img = G(torch.from_numpy(npz["z"]), torch.from_numpy(npz["c"]), truncation_psi=0.7, noise_mode="const")
        np.testing.assert_allclose(img.numpy(), npz["img_psi0.7_const"], atol=IMG_ATOL, rtol=0)


def test_uint8_check_allows_one_level_only_at_boundaries():
    """The pixel check the image tests use: a level off only where the reference float sits within
    IMG_ATOL of a level boundary, and only towards the other side of it."""
    v = np.array([100 + 1e-4, 100 - 1e-4, 50.5, 100 + 2e-3])      # x * 127.5 + 128 of four references
    ref = ((v - 128) / 127.5).reshape(1, 1, 1, 4)
    px = lambda *p: np.array(p, np.uint8).reshape(1, 1, 4, 1)
    assert_uint8_matches(px(100, 99, 50, 100), ref)                 # the reference's own pixels
    assert_uint8_matches(px(99, 100, 50, 100), ref)                 # the two near a boundary flip
    for bad in (px(100, 99, 51, 100), px(101, 99, 50, 100), px(100, 98, 50, 100), px(100, 99, 50, 99)):
        with pytest.raises(AssertionError):
            assert_uint8_matches(bad, ref)
    npz = load_npz("sg2ada_orig")
    assert_uint8_matches(npz["img_uint8_psi0.7_const"], npz["img_psi0.7_const"])


@pytest.mark.parametrize("name", FIXTURES)
def test_style_mixing_and_debug_taps(name):
    G, npz = build(name)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(npz["ws_mix"]), noise_mode="const")
    np.testing.assert_allclose(img.numpy(), npz["img_mix"], atol=IMG_ATOL, rtol=0)
    if "dbg_b8_x" not in npz:
        return
    # Block outputs for seed 0, psi 0.7: locates a mismatch to a block.
    taps = {}
    hooks = [getattr(G.synthesis, f"b{r}").register_forward_hook(
        lambda m, i, o, r=r: taps.update({f"dbg_b{r}_x": o[0], f"dbg_b{r}_img": o[1]})) for r in (4, 8)]
    with torch.no_grad():
        G.synthesis(torch.from_numpy(npz["ws_psi0.7"][:1]), noise_mode="const")
    for h in hooks:
        h.remove()
    for key in ("dbg_b4_x", "dbg_b4_img", "dbg_b8_x", "dbg_b8_img"):
        if key in npz:
            np.testing.assert_allclose(taps[key].numpy(), npz[key], atol=IMG_ATOL, rtol=0)


@pytest.mark.parametrize("name", ["sg2ada_skip", "sg3_t"])
def test_discriminator_logits(name):
    npz = load_npz(name)
    D = stylegan.create_model("stylegan2_discriminator", **init_kwargs(npz, "D_init_kwargs")).eval()
    want = prefixed(npz, "D")
    assert list(D.state_dict()) == list(want)
    D.load_state_dict(want, strict=True)
    with torch.no_grad():
        logits = D(torch.from_numpy(npz["img_psi1.0_const"]), torch.from_numpy(npz["c"]))
    np.testing.assert_allclose(logits.numpy(), npz["d_logits"], atol=IMG_ATOL, rtol=0)


def _shapes(entry):
    return [(n, tuple(s), kind) for n, s, kind in entry["tensors"]]


def _ours(module):
    params = {n for n, _ in module.named_parameters()}
    return [(n, tuple(t.shape), "param" if n in params else "buffer") for n, t in module.state_dict().items()]


@pytest.mark.parametrize("key, config", [("stylegan2-ada-pytorch paper1024 G_ema", "stylegan2-1024"),
                                         ("stylegan2-ada-pytorch paper1024 D", "stylegan2-d-1024")])
def test_full_size_names_and_shapes(key, config):
    entry = json.loads(reference_path("shapes.json").read_text())[key]
    net = stylegan.create_model(config)
    assert _ours(net) == _shapes(entry)
    if "num_ws" in entry:
        assert net.num_ws == entry["num_ws"]


def test_fused_and_unfused_modconv_agree():
    G, npz = build("sg2ada_resnet_cond")
    ws = torch.from_numpy(npz["ws_psi0.7"])
    with torch.no_grad():
        fused = G.synthesis(ws, noise_mode="const", fused_modconv=True)
        unfused = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    torch.testing.assert_close(fused, unfused, atol=IMG_ATOL, rtol=0)
    np.testing.assert_allclose(unfused.numpy(), npz["img_psi0.7_const"], atol=IMG_ATOL, rtol=0)


def test_noise_modes():
    G, npz = build("sg2ada_skip")
    ws = torch.from_numpy(npz["ws_psi1.0"][:1])
    with torch.no_grad():
        a, b = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const")
        r1, r2 = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
    assert torch.equal(a, b)
    assert not torch.equal(r1, r2) and not torch.equal(r1, a)
    with pytest.raises(AssertionError):
        G.synthesis(ws, noise_mode="loud")


def test_truncation_cutoff_only_touches_first_layers():
    G, npz = build("sg2ada_skip")
    z = torch.from_numpy(npz["z"][:2])
    with torch.no_grad():
        full = G.mapping(z, None, truncation_psi=1)
        cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.equal(cut[:, 3:], full[:, 3:])
    torch.testing.assert_close(cut[:, :3], G.mapping.w_avg + 0.5 * (full[:, :3] - G.mapping.w_avg))


def test_backward_reaches_every_parameter():
    G, npz = build("sg2ada_resnet_cond")
    G.train()
    img = G(torch.from_numpy(npz["z"][:2]), torch.from_numpy(npz["c"][:2]), noise_mode="random")
    img.square().mean().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in G.parameters())


def test_discriminator_conditional_and_skip_build():
    """A conditional skip D (no fixture): the image enters at every resolution, and the label acts
    only through the final projection, sample by sample."""
    D = stylegan.create_model("stylegan2_discriminator", c_dim=5, img_resolution=32, img_channels=3,
                              architecture="skip", channel_base=256, channel_max=32, num_fp16_res=0).eval()
    seen = {}
    hooks = [getattr(D, f"b{r}").register_forward_pre_hook(lambda m, a, r=r: seen.update({r: a[1].shape}))
             for r in (32, 16, 8, 4)]
    hooks.append(D.b4.out.register_forward_hook(lambda m, a, o: seen.update(h=o)))
    img = torch.randn(4, 3, 32, 32)
    c = torch.eye(5)[:4]
    c2 = c.clone()
    c2[0] = torch.eye(5)[4]                  # only sample 0's label changes
    with torch.no_grad():
        out = D(img, c)
        h, cmap = seen["h"], D.mapping(None, c)
        out2 = D(img, c2)
        h2 = seen["h"]
        w = D.b8.fromrgb.weight
        w.add_(1)
        out3 = D(img, c)
        w.sub_(1)
    for hk in hooks:
        hk.remove()
    assert out.shape == (4, 1)
    assert all(seen[r] == (4, 3, r, r) for r in (32, 16, 8, 4))     # skip: a downsampled image per block
    assert (out3 - out).abs().min() > 0                                # ... and the one at 8x8 counts
    # Projection: logit = <features, label embedding> / sqrt(cmap_dim); the features ignore the label.
    assert torch.equal(h2, h)
    torch.testing.assert_close(out, (h * cmap).sum(1, keepdim=True) / np.sqrt(cmap.shape[1]), rtol=1e-6, atol=1e-6)
    # The same images with another label: that sample's logit moves, the others' do not (the
    # minibatch-std layer couples the images of a group, never their labels).
    assert (out2[0] - out[0]).abs().item() > 1e-3
    assert torch.equal(out2[1:], out[1:])


def test_bad_shapes_raise():
    """The shape check names the dimension and both sizes (not any assertion deeper inside)."""
    G, _ = build("sg2ada_skip")
    with pytest.raises(AssertionError, match=r"^wrong size for dimension 1: got 63, expected 64$"):
        G.mapping(torch.zeros(1, 63), None)
    with pytest.raises(AssertionError, match=r"^wrong size for dimension 1: got 7, expected 8$"):
        G.synthesis(torch.zeros(1, G.num_ws - 1, G.w_dim))
    with pytest.raises(AssertionError, match=r"^wrong number of dimensions: got 2, expected 3$"):
        G.synthesis(torch.zeros(G.num_ws, G.w_dim))
