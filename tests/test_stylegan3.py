"""StyleGAN3 generator (T and R) against the reference outputs of NVIDIA's networks_stylegan3.py."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from conftest import IMG_ATOL, SG3_FIXTURES, assert_uint8_matches, init_kwargs, load_npz, prefixed, reference_path
from stylegan.images import to_uint8
from stylegan.networks import create_model, list_configs



@pytest.fixture(scope="module", params=SG3_FIXTURES)
def fixture(request):
    return request.param, load_npz(request.param)


@pytest.fixture(scope="module")
def loaded(fixture):
    name, npz = fixture
    G = create_model("stylegan3", **init_kwargs(npz)).eval()
    G.load_state_dict(prefixed(npz, "G"), strict=True)
    return name, npz, G


def _t(a) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


def _assert_close(actual: torch.Tensor, expected, atol: float) -> None:
    torch.testing.assert_close(actual, _t(expected), rtol=0, atol=atol)


def _assert_schedule(mine: dict, ref: dict, what: str) -> None:
    """Every key the reference records must be present with an equal value (floats to 1e-12)."""
    for key, want in ref.items():
        assert key in mine, f"{what}: missing {key}"
        got = mine[key]
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12, abs=0), f"{what}.{key}: {got} != {want}"
        else:
            assert got == want and type(got) is type(want), f"{what}.{key}: {got!r} != {want!r}"


# --- construction: schedule and filter design, before any weights are loaded ------------------

def test_schedule_and_filters_match_reference(fixture):
    name, npz = fixture
    G = create_model("stylegan3", **init_kwargs(npz))
    ref = json.loads(str(npz["layer_schedule"]))
    mine = G.synthesis.layer_schedule()
    _assert_schedule(mine["input"], ref["input"], "input")
    assert [l["name"] for l in mine["layers"]] == [l["name"] for l in ref["layers"]]
    for got, want in zip(mine["layers"], ref["layers"]):
        _assert_schedule(got, want, want["name"])
    assert G.num_ws == len(ref["layers"]) + 1 == 16

    # Filters designed by our code vs NVIDIA's buffers: same set of layers (identity -> no entry)
    # and the same taps, bit for bit.
    ref_filters = {k: v for k, v in prefixed(npz, "G").items() if k.endswith("_filter")}
    my_filters = {k: v for k, v in G.state_dict().items() if k.endswith("_filter")}
    assert sorted(my_filters) == sorted(ref_filters)
    assert len(ref_filters) > 0
    for k, want in ref_filters.items():
        assert my_filters[k].shape == want.shape, k
        assert torch.equal(my_filters[k], want), f"{k}: max diff {(my_filters[k] - want).abs().max()}"
    if name == "sg3_r":  # radial (2-D) down filters except the critically sampled layers
        assert my_filters["synthesis.L0_36_64.down_filter"].ndim == 2
        assert my_filters["synthesis.L12_52_32.down_filter"].ndim == 1


def test_state_dict_names_order_shapes(fixture):
    _, npz = fixture
    G = create_model("stylegan3", **init_kwargs(npz))
    ref = prefixed(npz, "G")
    mine = G.state_dict()
    assert list(mine) == list(ref)
    for k, v in ref.items():
        assert tuple(mine[k].shape) == tuple(v.shape), k
    G.load_state_dict(ref, strict=True)
    for k, v in G.state_dict().items():
        assert torch.equal(v, ref[k]), k


# --- outputs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_ws(loaded, psi):
    _, npz, G = loaded
    z, c = _t(npz["z"]), _t(npz["c"])
    with torch.no_grad():
        ws = torch.cat([G.mapping(z[i:i + 1], c[i:i + 1], truncation_psi=psi) for i in range(4)])
    assert ws.shape == (4, G.num_ws, G.w_dim)
    _assert_close(ws, npz[f"ws_psi{psi}"], atol=IMG_ATOL)


def test_truncation_cutoff(loaded):
    _, npz, G = loaded
    z, c = _t(npz["z"][:1]), _t(npz["c"][:1])
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=3)
        full, trunc = G.mapping(z, c), G.mapping(z, c, truncation_psi=0.7)
    _assert_close(ws[:, :3], npz["ws_psi0.7"][:1, :3], IMG_ATOL)
    _assert_close(ws[:, 3:], npz["ws_psi1.0"][:1, 3:], IMG_ATOL)
    # On one machine the rows are exactly those of full truncation and of none.
    assert torch.equal(ws[:, :3], trunc[:, :3]) and torch.equal(ws[:, 3:], full[:, 3:])


@pytest.mark.parametrize("psi", [1.0, 0.7])
@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_images_batch1(loaded, psi, noise_mode):
    _, npz, G = loaded
    z, c = _t(npz["z"]), _t(npz["c"])
    with torch.no_grad():
        img = torch.cat([G(z[i:i + 1], c[i:i + 1], truncation_psi=psi, noise_mode=noise_mode) for i in range(4)])
    assert img.dtype == torch.float32 and img.shape == (4, 3, 32, 32)
    _assert_close(img, npz[f"img_psi{psi}_{noise_mode}"], IMG_ATOL)
    if psi == 0.7 and noise_mode == "const":
        assert_uint8_matches(to_uint8(img), npz["img_psi0.7_const"])
        # NVIDIA's own uint8 conversion of its float images is what ours does, bit for bit.
        np.testing.assert_array_equal(to_uint8(torch.from_numpy(npz["img_psi0.7_const"])), npz["img_uint8_psi0.7_const"])


def test_images_batch4_and_synthesis(loaded):
    _, npz, G = loaded
    with torch.no_grad():
        img = G(_t(npz["z"]), _t(npz["c"]), truncation_psi=0.7)
        img_s = G.synthesis(_t(npz["ws_psi0.7"]), noise_mode="const")
    _assert_close(img, npz["img_psi0.7_const"], IMG_ATOL)
    _assert_close(img_s, npz["img_psi0.7_const"], IMG_ATOL)


def test_style_mix(loaded):
    _, npz, G = loaded
    with torch.no_grad():
        img = G.synthesis(_t(npz["ws_mix"]), noise_mode="const")
    _assert_close(img, npz["img_mix"], IMG_ATOL)


def test_user_transform(loaded):
    _, npz, G = loaded
    z, c = _t(npz["z"]), _t(npz["c"])
    m = _t(npz["transform_matrix"])
    assert not torch.allclose(m, torch.eye(3, dtype=m.dtype))
    old = G.synthesis.input.transform.clone()
    try:
        G.synthesis.input.transform.copy_(m)
        with torch.no_grad():
            img = torch.cat([G(z[i:i + 1], c[i:i + 1], truncation_psi=0.7, noise_mode="const") for i in range(4)])
    finally:
        G.synthesis.input.transform.copy_(old)
    _assert_close(img, npz["img_transformed_psi0.7_const"], IMG_ATOL)
    # The transform must matter: the reference transformed images differ from the plain ones.
    assert (img - _t(npz["img_psi0.7_const"])).abs().max() > 0.1


def test_fourier_input():
    """The Fourier-feature input in full (recorded for sg3_t only): seed 0, psi 0.7."""
    npz = load_npz("sg3_t")
    G = create_model("stylegan3", **init_kwargs(npz)).eval()
    G.load_state_dict(prefixed(npz, "G"), strict=True)
    with torch.no_grad():
        x = G.synthesis.input(_t(npz["ws_psi0.7"][:1, 0]))
    _assert_close(x, npz["dbg_input"], IMG_ATOL)


def test_layer_stats_sg3_t():
    """Per-layer max-abs of the recorded taps (seed 0, psi 0.7): localises a mismatch to a layer."""
    npz = load_npz("sg3_t")
    G = create_model("stylegan3", **init_kwargs(npz)).eval()
    G.load_state_dict(prefixed(npz, "G"), strict=True)
    names = [str(n) for n in npz["dbg_stats_names"]]
    ref = dict(zip(names, npz["dbg_stats"]))
    ws = _t(npz["ws_psi0.7"][:1]).unbind(1)
    with torch.no_grad():
        x = G.synthesis.input(ws[0])
        got = {"input": x}
        for n, w in zip(G.synthesis.layer_names, ws[1:]):
            x = getattr(G.synthesis, n)(x, w)
            got[n] = x
    assert sorted(got) == sorted(names)
    for n, x in got.items():
        x = x.double()
        mine = np.array([x.mean(), x.min(), x.max(), x.abs().max()])
        want = ref[n][[0, 2, 3, 4]]  # mean, min, max, max-abs (std's ddof is not recorded)
        np.testing.assert_allclose(mine, want, rtol=0, atol=IMG_ATOL, err_msg=n)


# --- invariants -----------------------------------------------------------------------------------

def test_update_emas_changes_only_emas(loaded):
    _, npz, G0 = loaded
    G = copy.deepcopy(G0).train()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    with torch.no_grad():
        G(_t(npz["z"]), _t(npz["c"]), update_emas=True)
    ema_keys = [k for k in before if k.endswith("magnitude_ema") or k == "mapping.w_avg"]
    assert len(ema_keys) == 1 + 15
    for k, v in G.state_dict().items():
        if k in ema_keys:
            assert not torch.equal(v, before[k]), f"{k} not updated"
            assert torch.isfinite(v).all()
        else:
            assert torch.equal(v, before[k]), f"{k} changed"
    # Without update_emas nothing changes.
    snap = {k: v.clone() for k, v in G.state_dict().items()}
    with torch.no_grad():
        G(_t(npz["z"]), _t(npz["c"]))
    assert all(torch.equal(v, snap[k]) for k, v in G.state_dict().items())


def test_backward_finite(loaded):
    _, npz, G0 = loaded
    G = copy.deepcopy(G0)
    img = G(_t(npz["z"][:2]), _t(npz["c"][:2]), truncation_psi=0.7)
    img.square().mean().backward()
    for k, p in G.named_parameters():
        assert p.grad is not None, k
        assert torch.isfinite(p.grad).all(), k
    assert any(p.grad.abs().max() > 0 for p in G.parameters())


def test_fp16_flag_is_ignored_on_cpu(fixture):
    """num_fp16_res only selects fp16 on CUDA: on CPU the layers run in float32 and agree exactly."""
    _, npz = fixture
    kwargs = init_kwargs(npz)
    G16 = create_model("stylegan3", **{**kwargs, "num_fp16_res": 4}).eval()
    G32 = create_model("stylegan3", **kwargs).eval()
    sd = prefixed(npz, "G")
    G16.load_state_dict(sd, strict=True)
    G32.load_state_dict(sd, strict=True)
    assert sum(getattr(G16.synthesis, n).use_fp16 for n in G16.synthesis.layer_names) > 0
    ws = _t(npz["ws_psi0.7"][:1])
    with torch.no_grad():
        a, b = G16.synthesis(ws), G32.synthesis(ws)
    assert a.dtype == torch.float32 and torch.equal(a, b)


def test_conv_clamp_engages(fixture):
    """The clamp acts after the leaky ReLU, before the down filter: |out| <= clamp * L1(down filter)."""
    _, npz = fixture
    clamp = 0.5
    G = create_model("stylegan3", **{**init_kwargs(npz), "conv_clamp": clamp}).eval()
    G.load_state_dict(prefixed(npz, "G"), strict=True)
    peaks = {}
    hooks = [getattr(G.synthesis, n).register_forward_hook(
        lambda m, i, o, n=n: peaks.__setitem__(n, o.abs().max().item())) for n in G.synthesis.layer_names]
    with torch.no_grad():
        img = G.synthesis(_t(npz["ws_psi0.7"][:1]))
    for h in hooks:
        h.remove()
    assert len(peaks) == 15
    for n, peak in peaks.items():
        fd = getattr(G.synthesis, n).down_filter
        l1 = 1.0 if fd is None else fd.abs().sum().item() ** (2 if fd.ndim == 1 else 1)
        assert peak <= clamp * l1 * (1 + 1e-6), (n, peak)
    assert peaks[G.synthesis.layer_names[-1]] <= clamp  # ToRGB: no filter after the clamp
    # The fixtures' activations reach 13.4, so the clamp really changed the result.
    assert (img - _t(npz["img_psi0.7_const"][:1])).abs().max() > 1e-3


# --- full-size official configs ---------------------------------------------------------------------

def _shapes_entry(key: str) -> dict:
    with open(reference_path("shapes.json")) as f:
        return json.load(f)[key]


@pytest.mark.parametrize("cfg", ["t", "r"])
def test_full_size_config(cfg):
    entry = _shapes_entry(f"stylegan3 stylegan3-{cfg} ffhq-1024 G_ema")
    G = create_model(f"stylegan3-{cfg}-1024")
    assert G.init_kwargs == entry["init_kwargs"]
    assert G.num_ws == entry["num_ws"]
    # StyleGAN3 mapping defaults (2 layers, w_avg_beta 0.998) and the EMA decay reach the layers.
    assert G.mapping.num_layers == 2 and G.mapping.w_avg_beta == 0.998
    betas = {getattr(G.synthesis, n).magnitude_ema_beta for n in G.synthesis.layer_names}
    assert betas == {entry["init_kwargs"]["magnitude_ema_beta"]}
    params = {k for k, _ in G.named_parameters()}
    got = [[k, list(v.shape), "param" if k in params else "buffer"] for k, v in G.state_dict().items()]
    assert got == entry["tensors"]
    sched = G.synthesis.layer_schedule()
    _assert_schedule(sched["input"], entry["input"], "input")
    assert len(sched["layers"]) == len(entry["layer_schedule"])
    for mine, want in zip(sched["layers"], entry["layer_schedule"]):
        _assert_schedule(mine, want, want["name"])


@pytest.mark.parametrize("res", [256, 512])
def test_smaller_configs(res):
    """train.py rules: T cbase 32768 (16384 for the 256 px runs) / cmax 512; R doubles both, 1x1 convs, radial."""
    assert {f"stylegan3-{c}-{res}" for c in "tr"} <= set(list_configs())
    cbase = 16384 if res == 256 else 32768
    T = create_model(f"stylegan3-t-{res}")
    R = create_model(f"stylegan3-r-{res}")
    assert (T.init_kwargs["channel_base"], T.init_kwargs["channel_max"]) == (cbase, 512)
    assert (R.init_kwargs["channel_base"], R.init_kwargs["channel_max"]) == (2 * cbase, 1024)
    for G, k, radial in ((T, 3, False), (R, 1, True)):
        s = G.synthesis.layer_schedule()
        assert G.img_resolution == res and G.num_ws == 16 and G.mapping.num_layers == 2
        assert [l["out_size"] for l in s["layers"][-2:]] == [res, res]
        assert s["layers"][-3]["out_sampling_rate"] == res and s["layers"][-3]["is_critically_sampled"]
        assert s["layers"][0]["conv_kernel"] == k and s["layers"][-1]["conv_kernel"] == 1
        assert s["layers"][0]["down_radial"] is radial and s["layers"][-2]["down_radial"] is False
        assert s["layers"][-1]["out_channels"] == 3
