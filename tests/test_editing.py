"""SeFa against numpy's eigendecomposition of the fixtures' weights; edits through w, w+ and S."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import stylegan
from stylegan.editing import Direction, edit, sefa, stylespace
from stylegan.editing.apply import shift_styles, shift_ws
from stylegan.networks.styles import style_layers, synthesize_styles, ws_to_styles

from conftest import fixture_model, load_npz

FIXTURES = ["sg2ada_skip", "sg3_t"]


def load_G(name):
    return fixture_model(name)["G_ema"]


def conv_affines_from_npz(name: str) -> list[np.ndarray]:
    """The conv layers' affine weights straight from the fixture arrays, in synthesis order."""
    npz = load_npz(name)
    keys = [k for k in npz if k.startswith("G/synthesis.") and k.endswith(".affine.weight")
            and "torgb" not in k and ".input." not in k and "L14_" not in k]
    return [npz[k].astype(np.float64) for k in keys]


@pytest.mark.parametrize("name", FIXTURES)
def test_sefa_is_numpys_eigendecomposition(name):
    G = load_G(name)
    a = np.concatenate(conv_affines_from_npz(name))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    values, vectors = np.linalg.eig(a.T @ a)
    order = np.argsort(values.real)[::-1]
    d = sefa(G, "all", num_components=5)
    for k in range(5):
        assert abs(float(d.vectors[k].double() @ torch.from_numpy(vectors[:, order[k]].real))) > 1 - 1e-5
    np.testing.assert_allclose(d.params["eigenvalues"], values.real[order[:5]], rtol=1e-6)
    assert d.layers == list(range(G.num_ws))
    coarse = sefa(G, "coarse", num_components=3)
    assert coarse.layers == [0, 1, 2, 3] and not torch.allclose(coarse.vectors, d.vectors[:3])


@pytest.mark.parametrize("name", FIXTURES)
def test_edit_w_and_w_plus_agree(name):
    G = load_G(name)
    d = sefa(G, "all", num_components=2)
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(np.random.RandomState(0).randn(1, G.z_dim)), None)[0, 0]
        plain = stylegan.pipelines.synthesize(G, w[None, None].repeat(1, G.num_ws, 1))
    a = edit(G, w, d, [0.0, -3.0, 3.0])
    b = edit(G, w[None].repeat(G.num_ws, 1), d, [0.0, -3.0, 3.0])
    assert a.shape == (3, 1, G.img_resolution, G.img_resolution, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], plain)               # strength 0 is the input
    assert not np.array_equal(a[1], a[2])


@pytest.mark.parametrize("name", FIXTURES)
def test_layer_range_moves_only_those_rows(name):
    G = load_G(name)
    d = Direction(torch.nn.functional.normalize(torch.randn(1, G.w_dim), dim=1))
    ws = torch.randn(2, G.num_ws, G.w_dim)
    out = shift_ws(G, ws, d, 2.0, rows=[1, 2])
    changed = (out != ws).any(dim=2).any(dim=0)
    assert changed.tolist() == [i in (1, 2) for i in range(G.num_ws)]
    torch.testing.assert_close(out[:, 1] - ws[:, 1], 2.0 * d.vectors[0].expand(2, -1))
    with pytest.raises(ValueError, match="out of range"):
        shift_ws(G, ws, d, 1.0, rows=[G.num_ws])
    with pytest.raises(ValueError, match="dimensions"):
        shift_ws(G, ws, Direction(torch.ones(1, G.w_dim + 1)), 1.0)


@pytest.mark.parametrize("name", FIXTURES)
def test_style_channel_edit_changes_only_that_style(name):
    G = load_G(name)
    ws = G.mapping(torch.from_numpy(np.random.RandomState(1).randn(1, G.z_dim)), None)
    layers = style_layers(G)
    total = sum(layer.channels for layer in layers)
    target = layers[2]
    index = sum(layer.channels for layer in layers[:2]) + 3
    d = Direction(torch.nn.functional.one_hot(torch.tensor(index), total).float()[None], space="s")
    with torch.no_grad():
        styles = ws_to_styles(G, ws)
        moved = shift_styles(G, styles, d, 5.0)
        for layer in layers:
            diff = (moved[layer.name] - styles[layer.name]).abs()
            if layer.name == target.name:
                assert diff[0, 3] == pytest.approx(5.0) and diff[0, :3].sum() == 0 and diff[0, 4:].sum() == 0
            else:
                assert diff.sum() == 0
        before = synthesize_styles(G, styles, noise_mode="const")
        after = synthesize_styles(G, moved, noise_mode="const")
    assert not torch.equal(before, after)
    images = edit(G, ws, d, [0.0, 5.0])
    np.testing.assert_array_equal(images[1], stylegan.images.to_uint8(after))


def test_stylespace_finds_local_channels():
    G = load_G("sg2ada_skip")
    ws = G.mapping(torch.from_numpy(np.random.RandomState(2).randn(4, G.z_dim)), None)
    mask = np.zeros([32, 32], np.float32)
    mask[:, :12] = 1                                   # the left part of the image
    d = stylespace(G, ws, mask, top=3, probes=16)
    assert d.space == "s" and len(d) == 3
    # An independent check by finite differences: the top channel moves pixels inside more than outside.
    images = edit(G, ws, d, [0.0, 4.0], component=0).astype(np.float64)
    change = np.abs(images[1] - images[0]).mean(axis=(0, 3))
    assert change[:, :12].mean() > 2 * change[:, 12:].mean()


def test_edits_together_are_the_sum_of_their_moves():
    """edit_many with a w move on some rows, another on other rows, and an S move equals the
    synthesis of the ws moved by hand and the styles moved by hand; no moves is the latent's image."""
    from stylegan.editing import Move, edit_many
    from stylegan.images import to_uint8
    G = load_G("sg2ada_skip")
    ws = G.mapping(torch.from_numpy(np.random.RandomState(1).randn(2, G.z_dim)), None)
    a = Direction(torch.nn.functional.normalize(torch.randn(2, G.w_dim), dim=1))
    b = Direction(torch.nn.functional.normalize(torch.randn(1, G.w_dim), dim=1), std=torch.tensor([0.5]))
    n = sum(layer.channels for layer in style_layers(G))
    s = Direction(torch.nn.functional.normalize(torch.randn(1, n), dim=1), space="s")
    moves = [Move(a, 2.0, component=1, rows=[0, 1]), Move(b, -3.0, rows=[4, 5, 6]), Move(s, 4.0)]
    by_hand = ws.clone()
    by_hand[:, [0, 1]] += 2.0 * a.vectors[1]
    by_hand[:, [4, 5, 6]] += -3.0 * 0.5 * b.vectors[0]
    styles = ws_to_styles(G, by_hand)
    flat = torch.cat(list(styles.values()), dim=1) + 4.0 * s.vectors[0]
    styles = dict(zip(styles, flat.split([v.shape[1] for v in styles.values()], dim=1)))
    with torch.no_grad():
        want = to_uint8(synthesize_styles(G, styles, noise_mode="const"))
        plain = to_uint8(G.synthesis(ws, noise_mode="const"))
    np.testing.assert_array_equal(edit_many(G, ws, moves), want)
    np.testing.assert_array_equal(edit_many(G, ws, []), plain)
    np.testing.assert_array_equal(edit_many(G, ws, [Move(a, 0.0), Move(s, 0.0)]), plain)
    with pytest.raises(ValueError, match="finite"):
        edit_many(G, ws, [Move(a, float("nan"))])
