"""The style API: the style-layer table, ws -> styles (S space) and synthesis from styles, on every fixture."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import stylegan
from scripts.cli import main
from stylegan.networks import styles as S
from stylegan.networks.layers import FullyConnectedLayer

from conftest import IMG_ATOL, SG2_FIXTURES, fixture_model, load_npz, reference_path

FIXTURES = SG2_FIXTURES + ["tf_sg2", "rosinality", "sg3_t", "sg3_r"]


@pytest.fixture(scope="module", params=FIXTURES)
def loaded(request):
    name = request.param
    # rosinality's is a .pt, which the session cache (fixture pickles only) does not hold.
    nets = stylegan.load(reference_path("rosinality.pt")) if name == "rosinality" else fixture_model(name)
    G = nets.G_ema if hasattr(nets, "G_ema") else nets["G_ema"]
    npz = load_npz(name)
    key = "trunc0.7" if name == "rosinality" else "psi0.7"
    ws, img = torch.from_numpy(npz[f"ws_{key}"]), npz[f"img_{key}" if name == "rosinality" else f"img_{key}_const"]
    return name, G, ws, img, npz


def is_sg3(G) -> bool:
    return G.arch == "stylegan3"


def affine_outputs(G, ws, **kwargs) -> dict[str, torch.Tensor]:
    """What every affine of the synthesis network computes while synthesising from ws, found without the
    table: the FullyConnectedLayer modules below G.synthesis, by module path."""
    seen, hooks = {}, []
    for path, m in G.synthesis.named_modules():
        if isinstance(m, FullyConnectedLayer):
            assert path.endswith(".affine")
            hooks.append(m.register_forward_hook(lambda m, i, o, n=path[:-len(".affine")]: seen.update({n: o})))
    try:
        with torch.no_grad():
            G.synthesis(ws, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return seen


def styles_received(G, styles, **kwargs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Synthesise from styles, recording the styles argument each style layer is called with."""
    got, hooks = {}, []
    for path, m in G.synthesis.named_modules():
        if hasattr(m, "affine"):
            hooks.append(m.register_forward_pre_hook(
                lambda m, a, kw, n=path: got.update({n: kw["styles"]}), with_kwargs=True))
    try:
        with torch.no_grad():
            img = S.synthesize_styles(G, styles, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    return img, got


# --- the table ----------------------------------------------------------------------------------

def test_table_describes_the_network(loaded):
    name, G, ws, _, npz = loaded
    layers = S.style_layers(G)
    assert layers == S.style_layers(G.synthesis) == G.synthesis.style_layers()
    assert ws.shape[1] == G.num_ws                                  # the fixture's own ws
    names = [layer.name for layer in layers]
    assert len(set(names)) == len(names)
    log2 = int(np.log2(G.img_resolution))
    if is_sg3(G):
        # input, then num_layers + 1 layers (ToRGB last), one ws row each.
        assert [layer.kind for layer in layers] == ["input"] + ["conv"] * (G.num_ws - 2) + ["torgb"]
        assert names == ["input"] + G.synthesis.layer_names
        assert [layer.ws_index for layer in layers] == list(range(G.num_ws))
        assert layers[0].channels == 4
    else:
        # 2 log2(res) - 3 convs; a ToRGB at every resolution (skip) or the last only (orig, resnet).
        arch = G.synthesis.architecture
        num_torgb = log2 - 1 if arch == "skip" else 1
        assert G.num_ws == 2 * log2 - 2
        assert sum(layer.kind == "conv" for layer in layers) == 2 * log2 - 3
        assert sum(layer.kind == "torgb" for layer in layers) == num_torgb
        assert names[:3] == ["b4.conv1", "b4.torgb", "b8.conv0"] if arch == "skip" else ["b4.conv1", "b8.conv0"]
        assert layers[-1].name == f"b{G.img_resolution}.torgb"
        # Convs read consecutive rows; a ToRGB reads the row of the conv after it (the last: its own).
        convs = [layer for layer in layers if layer.kind == "conv"]
        assert [layer.ws_index for layer in convs] == list(range(G.num_ws - 1))
        for i, layer in enumerate(layers):
            if layer.kind == "torgb":
                assert layer.ws_index == (layers[i + 1].ws_index if i + 1 < len(layers) else G.num_ws - 1)
    for layer in layers:
        module = G.synthesis.get_submodule(layer.name)
        assert layer.affine is module.affine and layer.affine.in_features == G.w_dim
        # A style scales the input channels of the layer's modulated convolution.
        if layer.kind != "input":
            assert layer.channels == module.weight.shape[1]
        want = npz.get(f"G/synthesis.{layer.name}.affine.weight")
        if want is not None:                                        # the reference network's own shapes
            assert layer.channels == want.shape[0]
    assert S.num_style_channels(G) == sum(layer.channels for layer in layers)


def test_full_size_stylegan2_style_space():
    """The StyleSpace paper's count for a 1024 px StyleGAN2: 9088 style channels, 6048 of them in convs."""
    G = stylegan.create_model("stylegan2-1024")
    layers = S.style_layers(G)
    assert len(layers) == 26 and S.num_style_channels(G) == 9088
    assert sum(layer.channels for layer in layers if layer.kind == "conv") == 6048
    assert max(layer.ws_index for layer in layers) == G.num_ws - 1 == 17


def test_ws_rows_by_perturbation(loaded):
    """Perturb one ws row and see which affines change their output inside synthesis: exactly the table's
    layers for that row."""
    _, G, ws, _, _ = loaded
    layers = S.style_layers(G)
    base = affine_outputs(G, ws[:1], noise_mode="const")
    assert sorted(base) == sorted(layer.name for layer in layers)
    for row in range(G.num_ws):
        moved = ws[:1].clone()
        moved[:, row] += 0.5
        out = affine_outputs(G, moved, noise_mode="const")
        changed = {n for n in base if not torch.equal(out[n], base[n])}
        assert changed == {layer.name for layer in layers if layer.ws_index == row}, row
    if not is_sg3(G) and G.synthesis.architecture == "skip":
        assert {layer.name for layer in layers if layer.ws_index == 3} == {"b8.torgb", "b16.conv0"}


# --- ws -> styles -> image ------------------------------------------------------------------------

def test_styles_are_what_synthesis_computes(loaded):
    _, G, ws, _, _ = loaded
    styles = S.ws_to_styles(G, ws)
    assert list(styles) == [layer.name for layer in S.style_layers(G)]
    inside = affine_outputs(G, ws, noise_mode="const")
    for name, s in styles.items():
        assert s.shape == (len(ws), G.synthesis.get_submodule(name).affine.out_features)
        assert torch.equal(s, inside[name]), name


@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_synthesis_from_styles_is_bit_identical(loaded, noise_mode):
    name, G, ws, img_ref, npz = loaded
    with torch.no_grad():
        styles = S.ws_to_styles(G, ws)
        img_ws = G.synthesis(ws, noise_mode=noise_mode)
        img_s = S.synthesize_styles(G, styles, noise_mode=noise_mode)
        img_kw = G.synthesis(styles=styles, noise_mode=noise_mode)
    assert torch.equal(img_s, img_ws) and torch.equal(img_kw, img_ws)
    if noise_mode == "const":
        np.testing.assert_allclose(img_s.numpy(), img_ref, atol=IMG_ATOL, rtol=0)
        # The fixture's style-mixed ws (rows from two seeds): the reference image, through styles.
        mix = torch.from_numpy(npz["ws_mix"])
        with torch.no_grad():
            img_mix = S.synthesize_styles(G, S.ws_to_styles(G, mix), noise_mode="const")
        assert torch.equal(img_mix, G.synthesis(mix, noise_mode="const"))
        np.testing.assert_allclose(img_mix.numpy(), npz["img_mix"], atol=IMG_ATOL, rtol=0)
    elif not is_sg3(G) and name != "rosinality":
        np.testing.assert_allclose(img_s.numpy(), npz["img_psi0.7_none"], atol=IMG_ATOL, rtol=0)


def test_random_noise_and_modconv_forms_through_styles(loaded):
    _, G, ws, _, _ = loaded
    styles = S.ws_to_styles(G, ws)
    with torch.no_grad():
        torch.manual_seed(11)
        a = G.synthesis(ws, noise_mode="random")
        torch.manual_seed(11)
        b = S.synthesize_styles(G, styles, noise_mode="random")
        c = S.synthesize_styles(G, styles, noise_mode="random")
    assert torch.equal(a, b)
    if not is_sg3(G):                                   # StyleGAN3 has no noise inputs
        assert not torch.equal(b, c)
        for fused in (True, False):
            with torch.no_grad():
                want = G.synthesis(ws, noise_mode="const", fused_modconv=fused)
                got = S.synthesize_styles(G, styles, noise_mode="const", fused_modconv=fused)
            assert torch.equal(got, want), fused


# --- editing and gradients --------------------------------------------------------------------------

def test_editing_one_channel_touches_one_layer(loaded):
    _, G, ws, _, _ = loaded
    layers = S.style_layers(G)
    styles = S.ws_to_styles(G, ws[:1])
    img, seen = styles_received(G, styles, noise_mode="const")
    # The first layer of each kind (conv, torgb, input), one from the middle and the last.
    picks = list({layer.kind: layer for layer in reversed(layers)}.values()) + [layers[len(layers) // 2], layers[-1]]
    for layer in picks:
        channel = layer.channels // 2
        edited = {n: s.clone() for n, s in styles.items()}
        edited[layer.name][:, channel] += 2.0
        img_e, seen_e = styles_received(G, edited, noise_mode="const")
        assert sorted(seen_e) == sorted(seen) == sorted(styles)
        changed = {n for n in seen if not torch.equal(seen_e[n], seen[n])}
        assert changed == {layer.name}
        diff = (seen_e[layer.name] - seen[layer.name]).ne(0).nonzero()[:, 1].tolist()
        assert diff == [channel]
        assert (img_e - img).abs().max() > 1e-3, layer.name


def test_gradients_reach_styles(loaded):
    _, G, ws, _, _ = loaded
    styles = {n: s.detach().requires_grad_(True) for n, s in S.ws_to_styles(G, ws[:2]).items()}
    img = S.synthesize_styles(G, styles, noise_mode="const")
    img.square().mean().backward()
    for n, s in styles.items():
        assert s.grad is not None and torch.isfinite(s.grad).all(), n
        assert s.grad.abs().max() > 0, n
    # Through ws_to_styles, ws receives the gradient of synthesis from ws.
    w1 = ws[:2].clone().requires_grad_(True)
    w2 = ws[:2].clone().requires_grad_(True)
    G.synthesis(w1, noise_mode="const").square().mean().backward()
    S.synthesize_styles(G, S.ws_to_styles(G, w2), noise_mode="const").square().mean().backward()
    torch.testing.assert_close(w2.grad, w1.grad, rtol=1e-5, atol=1e-7)


# --- bad input ------------------------------------------------------------------------------------

def test_bad_styles_raise_one_line_value_errors():
    G = stylegan.create_model("stylegan2", z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                              synthesis_kwargs=dict(channel_base=64, channel_max=8, num_fp16_res=0))
    styles = S.ws_to_styles(G, torch.randn(2, G.num_ws, G.w_dim))
    first = next(iter(styles))
    cases = [
        ({n: s for n, s in styles.items() if n != first}, "missing"),
        ({**styles, "b4.conv9": styles[first]}, "unknown"),
        ({**styles, first: styles[first][:, :-1]}, r"must have shape \[N, 8\]"),
        ({**styles, first: styles[first][:1]}, "batch"),
        ([styles[n] for n in styles], "dict"),
    ]
    for bad, match in cases:
        with pytest.raises(ValueError, match=match) as e:
            S.synthesize_styles(G, bad)
        assert "\n" not in str(e.value)
    assert G.num_ws == 4
    with pytest.raises(ValueError, match=r"shape \[N, 4, 8\], got \[1, 5, 8\]"):
        S.ws_to_styles(G, torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match="either ws or styles"):
        G.synthesis(torch.zeros(1, 4, 8), styles=styles)
    with pytest.raises(ValueError, match="either ws or styles"):
        G.synthesis()
    with pytest.raises(ValueError, match="no style layers"):
        S.style_layers(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("name", ["sg2ada_skip", "sg2ada_resnet_cond", "sg3_r"])
def test_info_prints_the_style_space(name):
    """Counted from the reference network's own affine weights (one per style layer)."""
    npz = load_npz(name)
    rows = [v.shape[0] for k, v in npz.items() if k.startswith("G/synthesis.") and k.endswith(".affine.weight")]
    r = CliRunner().invoke(main, ["info", str(reference_path(f"{name}.pkl"))])
    assert r.exit_code == 0, r.output
    assert r.output.count(f"{len(rows)} style layers, {sum(rows):,} style channels") == 2   # G_ema and G
