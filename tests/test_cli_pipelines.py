"""`stylegan generate | mix | video` end to end on fixture networks."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from stylegan.io import files as io_files
from stylegan.io import load_latents

from conftest import IMG_ATOL, REPO, assert_uint8_matches, dead_pid, load_npz, reference_path, run


def read(path):
    return np.asarray(Image.open(path))


def test_generate_writes_reference_pixels_and_grid(tmp_path):
    npz = load_npz("sg2ada_skip")
    r = run("generate", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0-3", "--trunc", "0.7",
            "--outdir", tmp_path, "--batch", "3", "--grid", "2x2", "--save-w")
    assert r.exit_code == 0, r.output
    got = np.stack([read(tmp_path / f"seed{s:04d}.png") for s in range(4)])
    assert_uint8_matches(got, npz["img_psi0.7_const"])
    grid = read(tmp_path / "grid0000.png")
    np.testing.assert_array_equal(grid[32:, :32], got[2])
    w = load_latents(tmp_path / "seed0001.w.safetensors")
    assert w.space == "w+" and w.psi == 0.7 and w.source == "seed 1"
    np.testing.assert_allclose(w.ws[0].numpy(), npz["ws_psi0.7"][1], atol=IMG_ATOL, rtol=0)


def test_generate_jpg_and_class(tmp_path):
    r = run("generate", "--network", reference_path("sg2ada_resnet_cond.pkl"), "--seeds", "0", "--class", "2",
            "--format", "jpg", "--outdir", tmp_path)
    assert r.exit_code == 0, r.output
    assert read(tmp_path / "seed0000.jpg").shape == (32, 32, 3)


@pytest.mark.parametrize("args, message", [
    (["--seeds", "3-1"], "end before start"),
    (["--seeds", "x"], "bad integer list"),
    (["--seeds", "0", "--device", "tpu"], "unknown device"),
    (["--seeds", "0", "--class", "1"], "unconditional"),
    (["--seeds", "0", "--grid", "2by2"], "bad grid"),
])
def test_generate_bad_input_is_one_line(tmp_path, args, message):
    r = run("generate", "--network", reference_path("sg2ada_skip.pkl"), "--outdir", tmp_path / "o", *args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output


def test_generate_unreadable_network_and_file_outdir(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a network")
    r = run("generate", "--network", bad, "--seeds", "0", "--outdir", tmp_path / "o")
    assert r.exit_code == 1 and "bad.pkl" in r.output and len(r.output.strip().splitlines()) == 1
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = run("generate", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0", "--outdir", afile)
    assert r.exit_code != 0 and "Traceback" not in r.output


@pytest.mark.slow
def test_generate_interrupted_run_resumes(tmp_path):
    """Kill a run part way; a second run completes the set, and nothing half-written remains."""
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "scripts.cli", "generate", "--network", str(reference_path("sg3_t.pkl")),
           "--seeds", "0-199", "--batch", "1", "--outdir", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("seed*.png"))) < 3:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    first = {p.name for p in out.glob("seed*.png")}
    assert 3 <= len(first) < 200
    # SIGKILL may or may not land mid-write; make sure the resumed run meets an abandoned temporary.
    (out / f".seed0199.{io_files._HOST}-{dead_pid()}.tmp.png").write_bytes(b"half an image")
    r = run("generate", "--network", reference_path("sg3_t.pkl"), "--seeds", "0-199", "--outdir", out, "--batch", "16")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [".stylegan-run.json"] + [f"seed{s:04d}.png" for s in range(200)]
    npz = load_npz("sg3_t")
    got = np.stack([read(out / f"seed{s:04d}.png") for s in range(4)])
    assert_uint8_matches(got, npz["img_psi1.0_const"])


@pytest.mark.slow
def test_generate_under_torchrun_two_ranks(tmp_path):
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not on PATH")
    out = tmp_path / "o"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "scripts.cli", "generate", "--network",
           str(reference_path("sg2ada_skip.pkl")), "--seeds", "0-5", "--trunc", "0.7", "--grid", "2x3",
           "--outdir", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [".stylegan-run.json", "grid0000.png"] + \
        [f"seed{s:04d}.png" for s in range(6)]
    npz = load_npz("sg2ada_skip")
    got = np.stack([read(out / f"seed{s:04d}.png") for s in range(4)])
    assert_uint8_matches(got, npz["img_psi0.7_const"])
    assert "[rank 1/2]" in proc.stderr


def test_mix_grid_matches_reference(tmp_path):
    npz = load_npz("sg2ada_skip")
    r = run("mix", "--network", reference_path("sg2ada_skip.pkl"), "--rows", "0", "--cols", "1", "--styles", "0-3",
            "--trunc", "0.7", "--outdir", tmp_path, "--save-cells")
    assert r.exit_code == 0, r.output
    grid = read(tmp_path / "grid.png")
    assert grid.shape == (64, 64, 3)
    assert_uint8_matches(grid[None, 32:, 32:], npz["img_mix"])
    np.testing.assert_array_equal(read(tmp_path / "0-1.png"), grid[32:, 32:])
    again = run("mix", "--network", reference_path("sg2ada_skip.pkl"), "--rows", "0", "--cols", "1",
                "--outdir", tmp_path)
    assert again.exit_code == 1 and "exists" in again.output
    bad = run("mix", "--network", reference_path("sg2ada_skip.pkl"), "--rows", "0", "--cols", "1", "--styles",
              "0-99", "--outdir", tmp_path / "b")
    assert bad.exit_code == 1 and "out of range" in bad.output


@pytest.mark.parametrize("ext", ["mp4", "gif"])
def test_video(tmp_path, ext):
    import imageio.v2 as imageio
    out = tmp_path / f"walk.{ext}"
    r = run("video", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0-3", "--grid", "1x2",
            "--frames-per-seed", "2", "--out", out)
    assert r.exit_code == 0, r.output
    frames = imageio.mimread(out)
    assert len(frames) == 4 and frames[0].shape[:2] == (32, 64)
    assert run("video", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0-3", "--out", out).exit_code == 1
    assert run("video", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0", "--out",
               tmp_path / "x.mp4").exit_code == 1
    assert not list(tmp_path.glob(".*"))


def test_first_run_on_a_cpu_announces_the_kernel_build(tmp_path, monkeypatch):
    """The generator's kernel's one-time compile is said before it happens (StyleGAN3:
    filtered_lrelu, StyleGAN2: conv3x3), and only when no build for this CPU is cached."""
    import ops
    announce = "compiling the CPU kernel"
    asked = []
    monkeypatch.setattr(ops, "cpu_cached", lambda name: asked.append(name))   # as on a machine that never built it
    sg3 = run("generate", "--network", reference_path("sg3_t.pkl"), "--seeds", "0", "--outdir", tmp_path / "a")
    sg2 = run("generate", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0", "--outdir", tmp_path / "b")
    assert sg3.exit_code == 0 and announce in sg3.output
    assert sg2.exit_code == 0 and announce in sg2.output
    assert asked == ["filtered_lrelu", "conv3x3"]
    monkeypatch.setattr(ops, "cpu_cached", lambda name: str(tmp_path))   # built before: nothing to say
    again = run("generate", "--network", reference_path("sg3_t.pkl"), "--seeds", "1", "--outdir", tmp_path / "a")
    assert again.exit_code == 0 and announce not in again.output
