"""`stylegan mix` and `stylegan video`: outputs checked before any work, never replaced silently;
the pipelines behind them check arguments eagerly and leave the reusable pieces differentiable."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import stylegan
from stylegan.images import to_uint8
from stylegan.pipelines.checks import check_psi
from stylegan.pipelines.interpolate import key_latents
from stylegan.pipelines.mixing import mix_ws
from stylegan.seeds import z_from_seeds

from conftest import one_line_error, reference_path, run


def test_mix_outdir_checked_before_the_network_is_read(tmp_path):
    # The network does not exist: an error about the folder proves the folder was checked first.
    missing = tmp_path / "missing.pkl"
    (tmp_path / "afile").write_text("x")
    one_line_error(run("mix", "--network", missing, "--rows", "0", "--cols", "1", "--outdir", tmp_path / "afile" / "o"),
                   "not a folder")
    one_line_error(run("mix", "--network", missing, "--rows", "0", "--cols", "1", "--outdir", "/proc/stylegan-test"),
                   "cannot")
    if os.geteuid() != 0:                       # root writes anywhere: the mode bits prove nothing then
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        one_line_error(run("mix", "--network", missing, "--rows", "0", "--cols", "1", "--outdir", locked), "cannot")


def test_mix_never_replaces_outputs_silently(tmp_path):
    net = reference_path("sg2ada_skip.pkl")
    out = tmp_path / "m"
    out.mkdir()
    (out / "1-2.png").write_bytes(b"mine")
    r = run("mix", "--network", net, "--rows", "1", "--cols", "2", "--save-cells", "--outdir", out)
    one_line_error(r, "1-2.png", "--overwrite")
    assert (out / "1-2.png").read_bytes() == b"mine" and not (out / "grid.png").exists()
    r = run("mix", "--network", net, "--rows", "1", "--cols", "2", "--save-cells", "--outdir", out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert (out / "1-2.png").read_bytes()[:4] == b"\x89PNG" and (out / "grid.png").exists()
    assert not list(out.glob(".*"))


def test_mix_class_on_an_unconditional_network(tmp_path, G):
    with pytest.raises(ValueError, match="class_idx") as e:
        stylegan.style_mix(G, [0], [1], [0], class_idx=1)
    assert "--" not in str(e.value)
    one_line_error(run("mix", "--network", reference_path("sg2ada_skip.pkl"), "--rows", "0", "--cols", "1",
                       "--class", "1", "--outdir", tmp_path), "--class")
    assert not (tmp_path / "grid.png").exists()
    with pytest.raises(ValueError, match="unknown noise_mode"):
        stylegan.style_mix(G, [0], [1], [0], noise_mode="loud")


def test_mix_grid_too_large_is_refused_before_drawing(tmp_path, G):
    # Sized from the lengths alone: a lazy range of 2**32 seeds is never listed.
    with pytest.raises(ValueError, match="GiB"):
        stylegan.style_mix(G, range(2 ** 32), [1], [0])
    one_line_error(run("mix", "--network", reference_path("sg2ada_skip.pkl"), "--rows", "0-99999", "--cols",
                       "0-99999", "--outdir", tmp_path), "GiB")
    assert not list(tmp_path.iterdir())


def test_video_refuses_before_rendering(tmp_path):
    net = reference_path("sg2ada_skip.pkl")
    out = tmp_path / "w.gif"
    out.write_bytes(b"mine")
    one_line_error(run("video", "--network", net, "--seeds", "0,1", "--out", out), "--overwrite")
    assert out.read_bytes() == b"mine"
    one_line_error(run("video", "--network", net, "--seeds", "0,1", "--out", tmp_path / "w.avi"), ".mp4")
    one_line_error(run("video", "--network", net, "--seeds", "0", "--out", tmp_path / "one.gif"), "two seeds")
    one_line_error(run("video", "--network", net, "--seeds", "0-2", "--grid", "2x2", "--out", tmp_path / "g.gif"),
                   "multiple of 4")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        one_line_error(run("video", "--network", net, "--seeds", "0,1", "--out", locked / "w.gif"), "cannot")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["w.gif"] + (["locked"] if os.geteuid() else []))


def test_interpolation_checks_arguments_when_called(G):
    # Nothing is iterated: the error comes at the call, before a video file would be opened.
    for kwargs, message in [({"seeds": [0]}, "two seeds"), ({"psi": float("nan")}, "finite"),
                            ({"space": "q"}, "space"), ({"easing": "bouncy"}, "easing"),
                            ({"frames_per_seed": 0}, "frames_per_seed"), ({"class_idx": 2}, "class_idx"),
                            ({"seeds": [0, 2 ** 32]}, "out of range"), ({"noise_mode": "loud"}, "unknown noise_mode .loud.")]:
        args = {"seeds": [0, 1], **kwargs}
        with pytest.raises(ValueError, match=message):
            stylegan.interpolate(G, **args)
    with pytest.raises(ValueError, match="multiple"):
        from stylegan.pipelines.interpolate import grid_frames
        grid_frames(G, [0, 1, 2], (1, 2))


def test_interpolation_frames_after_the_eager_checks(G):
    # K-1 segments of frames_per_seed frames, plus the last key when not looping; batching changes
    # no more than float rounding (a uint8 step at most).
    a = np.stack(list(stylegan.interpolate(G, [3, 5], frames_per_seed=2, loop=False, batch_size=8)))
    b = np.stack(list(stylegan.interpolate(G, [3, 5], frames_per_seed=2, loop=False, batch_size=1)))
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b).max() <= 1
    # The walk starts at the first seed's image and ends at the second's; half way (smooth easing
    # is 1/2 at t = 1/2) it is the image of the mean of their w, which is neither end.
    ends = stylegan.generate(G, [3, 5], batch_size=1)
    assert np.abs(b[0].astype(int) - ends[0]).max() <= 1 and np.abs(b[2].astype(int) - ends[1]).max() <= 1
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(z_from_seeds([3, 5], G.z_dim)), None)
        middle = to_uint8(G.synthesis(ws.mean(0, keepdim=True), noise_mode="const"))[0]
    assert np.abs(b[1].astype(int) - middle).max() <= 1
    for end in ends:
        assert np.abs(b[1].astype(int) - end).mean() > 5      # it moved away from both keys


def test_reusable_pieces_carry_gradients():
    # Projection and training call these with gradients on; only the entry points turn them off.
    G = stylegan.load(reference_path("sg2ada_skip.pkl"), trainable=True)["G_ema"]
    w = mix_ws(G, [0], [1], psi=0.5)
    keys = key_latents(G, [0, 1], "w", 0.5, None)
    assert all(v.requires_grad for v in w.values()) and keys.requires_grad
    (w[0].square().sum() + keys.sum()).backward()
    grads = [p.grad for p in G.mapping.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    # mix_ws is the explicit truncation formula around w_avg: psi 0 gives w_avg for every seed.
    with torch.no_grad():
        w0 = mix_ws(G, [0], [1], psi=0.0)
    assert all(torch.allclose(v, G.mapping.w_avg.expand_as(v)) for v in w0.values())


@pytest.mark.parametrize("psi", [float("nan"), float("inf"), "0.5x", None])
def test_check_psi_refuses_non_numbers(psi):
    with pytest.raises(ValueError, match="psi"):
        check_psi(psi)


def test_check_psi_cutoff():
    assert check_psi("0.7") == 0.7 and check_psi(1, truncation_cutoff=8, num_ws=8) == 1.0
    for cutoff in (-1, 9):
        with pytest.raises(ValueError, match="truncation_cutoff"):
            check_psi(0.5, truncation_cutoff=cutoff, num_ws=8)


def test_interrupted_video_closes_its_encoder(tmp_path, monkeypatch):
    """imageio's own `with` closes a writer only on success; left open, ffmpeg lives on and can
    (re)create the temporary after it was removed. Ours closes it on any exit."""
    import imageio.v2 as imageio
    from stylegan.io.video import video_writer
    from stylegan.provenance import Provenance
    made = []
    real = imageio.get_writer
    monkeypatch.setattr(imageio, "get_writer", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    with pytest.raises(KeyboardInterrupt):
        with video_writer(tmp_path / "v.mp4", provenance=Provenance()) as append:
            append(np.zeros((32, 64, 3), np.uint8))
            raise KeyboardInterrupt
    assert len(made) == 1 and made[0].closed
    assert list(tmp_path.iterdir()) == []
