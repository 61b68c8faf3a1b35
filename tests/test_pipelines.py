"""Pipelines against the reference images: seeds, mixing, image sets, interpolation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import stylegan
from stylegan.pipelines import generate, parse_int_list, style_mix, write_image_set
from stylegan.pipelines.image_set import grid_image, seed_filename
from stylegan.pipelines.interpolate import interpolation_frames, slerp
from stylegan.seeds import z_from_seeds

from conftest import NVIDIA_FIXTURES, assert_uint8_matches, fixture_model, load_npz, reference_path


def load_G(name: str) -> torch.nn.Module:
    return fixture_model(name)["G_ema"]


def test_parse_int_list():
    assert parse_int_list("0-3,7,10-11") == [0, 1, 2, 3, 7, 10, 11]
    assert parse_int_list(" 5 ") == [5]
    for bad in ["", "a", "3-1", "1,,2", "1-2-3"]:
        with pytest.raises(ValueError):
            parse_int_list(bad)


def test_z_from_seeds_is_gen_images_latent():
    z = z_from_seeds([0, 1, 2, 3], 64)
    np.testing.assert_array_equal(z, load_npz("sg2ada_skip")["z"])
    with pytest.raises(ValueError, match="out of range"):
        z_from_seeds([-1], 8)


@pytest.mark.parametrize("name", NVIDIA_FIXTURES + ["tf_sg2"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_generate_matches_reference_pixels(name, batch_size):
    npz = load_npz(name)
    G = load_G(name)
    class_idx = 0 if G.c_dim else None
    seeds = [int(s) for s in npz["seeds"]]
    if G.c_dim:  # the conditional fixture used class i for seed i: check one seed per class
        for i, s in enumerate(seeds):
            got = generate(G, [s], psi=0.7, class_idx=i, batch_size=batch_size)
            assert_uint8_matches(got, npz["img_psi0.7_const"][i:i + 1])
        return
    got = generate(G, seeds, psi=0.7, class_idx=class_idx, batch_size=batch_size)
    assert_uint8_matches(got, npz["img_psi0.7_const"])


@pytest.mark.parametrize("name", ["sg2ada_skip", "sg3_t", "tf_sg2"])
def test_style_mix_matches_reference(name):
    npz = load_npz(name)
    G = load_G(name)
    rows, cols = [int(s) for s in npz["mix_row_seed"].reshape(-1)], [int(s) for s in npz["mix_col_seed"].reshape(-1)]
    styles = [int(s) for s in npz["mix_styles"]]
    result = style_mix(G, rows, cols, styles, psi=float(npz["mix_psi"]))
    assert_uint8_matches(result.cells[(rows[0], cols[0])][None], npz["img_mix"])
    grid = result.grid()
    r = G.img_resolution
    assert grid.shape == (2 * r, 2 * r, 3)
    assert (grid[:r, :r] == 0).all()
    np.testing.assert_array_equal(grid[r:, r:], result.cells[(rows[0], cols[0])])
    np.testing.assert_array_equal(grid[:r, r:], result.sources[cols[0]])


def test_style_mix_rejects_bad_layers():
    G = load_G("sg2ada_skip")
    with pytest.raises(ValueError, match="out of range"):
        style_mix(G, [0], [1], [G.num_ws])


def test_conditional_needs_class():
    G = load_G("sg2ada_resnet_cond")
    with pytest.raises(ValueError, match="conditional"):
        generate(G, [0])
    with pytest.raises(ValueError, match="out of range"):
        generate(G, [0], class_idx=5)


def test_image_set_resumes_and_shards(tmp_path):
    npz = load_npz("sg2ada_skip")
    G = load_G("sg2ada_skip")
    seeds = [0, 1, 2, 3]
    # Two ranks split the seeds between them; together they write every image once.
    s0 = write_image_set(G, seeds, tmp_path, psi=0.7, rank=0, world_size=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".stylegan-run.json", "seed0000.png", "seed0002.png"]
    s1 = write_image_set(G, seeds, tmp_path, psi=0.7, rank=1, world_size=2)
    assert (s0.written, s1.written) == (2, 2)
    from PIL import Image
    got = np.stack([np.asarray(Image.open(tmp_path / seed_filename(s, "png"))) for s in seeds])
    assert_uint8_matches(got, npz["img_psi0.7_const"])
    # Resume: only the missing image is made again; the others are left alone.
    (tmp_path / "seed0001.png").unlink()
    before = (tmp_path / "seed0000.png").stat().st_mtime_ns
    s = write_image_set(G, seeds, tmp_path, psi=0.7)
    assert (s.written, s.skipped) == (1, 3)
    assert (tmp_path / "seed0000.png").stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".stylegan-run.json"]  # no temps


def test_grid_image_layout():
    imgs = np.arange(5 * 2 * 2 * 1, dtype=np.uint8).reshape(5, 2, 2, 1)
    g = grid_image(imgs, 2, 3)
    assert g.shape == (4, 6, 1)
    np.testing.assert_array_equal(g[0:2, 2:4], imgs[1])
    np.testing.assert_array_equal(g[2:4, 0:2], imgs[3])
    assert (g[2:4, 4:6] == 0).all()


def test_slerp_endpoints_and_norm():
    a, b = torch.randn(3, 16, dtype=torch.float64), torch.randn(3, 16, dtype=torch.float64)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    # Unit vectors stay on the unit sphere all the way.
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(an, bn, 0.3).norm(dim=1), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolation_passes_through_key_seeds(space):
    G = load_G("sg2ada_skip")
    frames = list(interpolation_frames(G, [0, 1], frames_per_seed=3, space=space, loop=True, batch_size=4))
    assert len(frames) == 6
    keys = load_npz("sg2ada_skip")["img_psi1.0_const"]   # NVIDIA's float images of seeds 0 and 1
    assert_uint8_matches(frames[0][None], keys[:1])
    assert_uint8_matches(frames[3][None], keys[1:2])
    assert not np.array_equal(frames[1], frames[0])


def test_stylegan3_pose_is_gen_images_transform():
    """generate(transform=pose_transform(translate, rotate)) is gen_images.py --translate/--rotate:
    the matrix and the images of the fixture made with --translate=0.3,-0.2 --rotate=15; G's own
    transform is back afterwards, and StyleGAN2 refuses a transform in one line."""
    from stylegan.networks.stylegan3 import pose_transform
    npz = load_npz("sg3_t")
    m = pose_transform((0.3, -0.2), 15)
    np.testing.assert_allclose(m, npz["transform_matrix"], rtol=0, atol=1e-12)
    # Its own read of the file, not the session's copy: rendering writes G's input transform in place
    # (and puts it back, which this checks).
    G = stylegan.load(reference_path("sg3_t.pkl"))["G_ema"]
    before = G.synthesis.input.transform.clone()
    seeds = [int(s) for s in npz["seeds"]]
    got = generate(G, seeds, psi=0.7, transform=m, batch_size=1)
    assert_uint8_matches(got, npz["img_transformed_psi0.7_const"])
    assert torch.equal(G.synthesis.input.transform, before)
    assert_uint8_matches(generate(G, seeds, psi=0.7), npz["img_psi0.7_const"])
    np.testing.assert_array_equal(pose_transform(), np.eye(3))
    with pytest.raises(ValueError, match="needs a StyleGAN3 generator"):
        generate(load_G("sg2ada_skip"), [0], transform=m)

