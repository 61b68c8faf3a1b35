"""Nothing silently wrong, nothing lost, one line for what cannot be done: resumes that check what
they skip, files made for another network, long names, special files, memory ceilings, edit folders
that resume and share work. (A full disk has its own file, test_disk_full.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from stylegan.io import files as io_files

from conftest import dead_pid, one_line_error, reference_path, within
from conftest import run

NET = "sg2ada_skip.pkl"       # 8 ws rows, 32 px
NET16 = "sg3_t.pkl"           # 16 ws rows, the same w_dim


def files(folder) -> dict:
    """name -> content; a safetensors file as its tensors and metadata (its header's key order is
    the writer's hash order, not part of the content)."""
    return {p.name: _content(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _content(path):
    if path.suffix != ".safetensors":
        return path.read_bytes()
    from safetensors import safe_open
    with safe_open(str(path), framework="np") as f:
        return f.metadata(), {k: f.get_tensor(k).tobytes() for k in f.keys()}


# --- resume checks what it skips -----------------------------------------------------------------

def test_generate_resume_remakes_files_cut_short(tmp_path):
    """A crash outside the toolkit (power loss, a copy cut off) leaves a truncated seed0002.png and
    seed0001.w.safetensors under their real names: the rerun remakes exactly those."""
    net = reference_path(NET)
    r = run("generate", "--network", net, "--seeds", "0-3", "--save-w", "--outdir", tmp_path / "whole")
    assert r.exit_code == 0, r.output
    out = tmp_path / "cut"
    assert run("generate", "--network", net, "--seeds", "0-3", "--save-w", "--outdir", out).exit_code == 0
    for name in ("seed0002.png", "seed0001.w.safetensors"):
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[: len(data) // 2])
        assert not io_files.is_complete(out / name)
    r = run("generate", "--network", net, "--seeds", "0-3", "--save-w", "--outdir", out)
    assert r.exit_code == 0 and "1 images written, 3 already present, 1 w files" in r.output, r.output
    assert files(out) == files(tmp_path / "whole")


@pytest.mark.parametrize("kind", ["png", "jpg", "gif", "safetensors", "npz", "mp4"])
def test_is_complete_reads_each_formats_end(tmp_path, kind):
    from stylegan.io.video import write_video
    img = (np.random.default_rng(0).random([16, 16, 3]) * 255).astype(np.uint8)
    path = tmp_path / f"a.{kind}"
    if kind in ("png", "jpg", "gif"):
        Image.fromarray(img).save(path)
    elif kind == "safetensors":
        stylegan.save_latents(path, torch.randn(1, 8), space="w")
    elif kind == "npz":
        np.savez(path, w=np.zeros([1, 4, 8]))
    else:
        write_video(iter([img] * 4), path, fps=2, provenance=stylegan.provenance.Provenance())
    assert io_files.is_complete(path)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 10):
        path.write_bytes(data[:cut])
        assert not io_files.is_complete(path), cut
    assert not io_files.is_complete(tmp_path / "absent.png")


def test_a_writer_that_leaves_a_short_file_publishes_nothing(tmp_path):
    # Pillow's JPEG encoder and ffmpeg return success on a full disk, leaving a short file: the
    # temporary is checked by its format before it takes the real name.
    Image.fromarray(np.zeros([8, 8, 3], np.uint8)).save(tmp_path / "src.png")
    data = (tmp_path / "src.png").read_bytes()
    with pytest.raises(io_files.WriteError, match="cannot write") as e:
        with io_files.atomic_output(tmp_path / "a.png") as tmp:
            tmp.write_bytes(data[:-5])
    assert "\n" not in str(e.value) and not (tmp_path / "a.png").exists()
    assert sorted(os.listdir(tmp_path)) == ["src.png"]


# --- one mode for every output -------------------------------------------------------------------

def test_every_output_gets_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        r = run("generate", "--network", reference_path(NET), "--seeds", "0", "--save-w", "--outdir", tmp_path)
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o666 & ~0o022}, modes


# --- names near the file-system limit ------------------------------------------------------------

def test_temporary_names_fit_where_the_final_name_fits(tmp_path):
    limit = io_files.name_max(tmp_path)
    for n in (limit - 4, limit - 20, 30):
        target = tmp_path / ("n" * n + ".png")
        with io_files.atomic_output(target) as tmp:
            assert len(os.fsencode(tmp.name)) <= limit and io_files._TEMP.match(tmp.name)
            Image.fromarray(np.zeros([4, 4, 3], np.uint8)).save(tmp)
        assert io_files.is_complete(target)
        assert len(os.fsencode(io_files.claim_path(target).name)) <= limit
    # Two long names differing only at the end get different temporaries.
    a, b = tmp_path / ("m" * (limit - 5) + "a.png"), tmp_path / ("m" * (limit - 5) + "b.png")
    assert io_files.temp_path(a) != io_files.temp_path(b)
    with pytest.raises(io_files.WriteError, match="too long") as e:
        with io_files.atomic_output(tmp_path / ("n" * (limit + 1))) as tmp:
            tmp.write_bytes(b"x")
    assert "\n" not in str(e.value) and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_long_target_and_folder_names(tmp_path):
    net = reference_path(NET)
    limit = io_files.name_max(tmp_path)
    img = Image.fromarray(stylegan.generate(stylegan.load(net)["G_ema"], [5])[0])
    ok = tmp_path / ("t" * (limit - len("_projected_w.npz")) + ".png")      # its longest output just fits
    long = tmp_path / ("u" * (limit - 4) + ".png")                          # a valid name; its outputs are not
    img.save(ok)
    img.save(long)
    r = run("project", "--network", net, "--target", ok, "--target", long, "--steps", "2", "--no-identity",
            "--outdir", tmp_path / "p")
    assert r.exit_code == 1 and "1 targets projected" in r.output, r.output
    assert "too long for the file system" in r.output and "Traceback" not in r.output
    assert io_files.is_complete(tmp_path / "p" / f"{ok.stem}_compare.png")
    one_line_error(run("generate", "--network", net, "--seeds", "0", "--outdir", tmp_path / ("d" * (limit + 45))),
                   "name too long")


# --- special files -------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_given_as_network_or_photo_is_one_line(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    one_line_error(within(60, lambda: run("generate", "--network", fifo, "--seeds", "0", "--outdir", tmp_path / "g")),
                   "FIFO")
    r = within(60, lambda: run("project", "--network", reference_path(NET), "--target", fifo, "--steps", "1",
                               "--no-identity", "--outdir", tmp_path / "p"))
    assert r.exit_code == 1 and "FIFO" in r.output and r.output.count(str(fifo)) == 1, r.output
    r = within(60, lambda: run("edit", "--network", reference_path(NET), "--latent", fifo, "--edit", "sefa:1",
                               "--outdir", tmp_path / "e"))
    one_line_error(r, "FIFO")


# --- memory has a ceiling ------------------------------------------------------------------------

def test_huge_number_options_are_refused_before_allocating(tmp_path):
    net = reference_path(NET)
    one_line_error(within(60, lambda: run("edit", "--network", net, "--seeds", "0", "--edit", "sefa:0:-3..3",
                                          "--values", "100000000", "--outdir", tmp_path / "e")), "GiB", "values")
    one_line_error(within(60, lambda: run("generate", "--network", net, "--seeds", "0-3", "--grid", "1200x1200",
                                          "--outdir", tmp_path / "g")), "grid", "GiB")
    assert not list((tmp_path / "g").glob("*.png"))
    one_line_error(within(60, lambda: run("video", "--network", net, "--seeds", "0,1", "--frames-per-seed",
                                          "100000000", "--out", tmp_path / "v.gif")), "GIF", "GiB")
    assert not (tmp_path / "v.gif").exists()
    one_line_error(within(60, lambda: run("generate", "--network", net, "--seeds", "0", "--batch", "100000000",
                                          "--outdir", tmp_path / "g")), "--batch", "GiB")
    Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(tmp_path / "t.png")
    one_line_error(within(60, lambda: run("project", "--network", net, "--target", tmp_path / "t.png", "--steps",
                                          "1000000000", "--no-identity", "--outdir", tmp_path / "p")), "steps", "GiB")
    # An MP4 streams: a walk of 10^8 frames per seed makes its first frames at once, in flat memory.
    G = stylegan.load(net)["G_ema"]
    frames = within(60, lambda: stylegan.pipelines.interpolate.interpolation_frames(G, [0, 1],
                                                                                    frames_per_seed=10 ** 8))
    first = [f for f, _ in zip(frames, range(3))]
    want = list(stylegan.pipelines.interpolate.interpolation_frames(G, [0, 1], frames_per_seed=1))[0]
    np.testing.assert_array_equal(first[0], want)
    with pytest.raises(ValueError, match="GiB"):
        stylegan.style_mix(G, range(3000), range(3000), [0])


def test_photo_pixel_budget_reads_the_header_only(tmp_path):
    from stylegan.faces.photo import MAX_PIXELS, read_photo
    # 13300 x 13300 black pixels compress to about half a megabyte; decoded they take 0.5 GB, and
    # aligning them 3.9 GB. Pillow's own guard would only warn (and print its source line).
    Image.new("L", (13300, 13300)).save(tmp_path / "bomb.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # no DecompressionBombWarning
        with pytest.raises(ValueError, match="13300x13300 pixels .177 megapixels. is past the 64-megapixel budget"):
            within(10, lambda: read_photo(tmp_path / "bomb.png"))
    r = run("project", "--network", reference_path(NET), "--target", tmp_path / "bomb.png", "--steps", "1",
            "--no-identity", "--outdir", tmp_path / "p")
    assert r.exit_code == 1 and "--max-pixels" in r.output and "Warning" not in r.output, r.output
    Image.new("RGB", (2000, 1500), (10, 20, 30)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="max_pixels"):
        read_photo(tmp_path / "small.png", max_pixels=2_999_999)
    assert read_photo(tmp_path / "small.png", max_pixels=3_000_000).shape == (1500, 2000, 3)
    assert MAX_PIXELS == 64_000_000


# --- files made for another network --------------------------------------------------------------

def test_direction_and_latents_of_another_network_are_refused(tmp_path):
    net8, net16 = reference_path(NET), reference_path(NET16)
    d = tmp_path / "sefa8.direction"
    assert run("directions", "sefa", "--network", net8, "--layers", "0-7", "--out", d).exit_code == 0
    G8, G16 = stylegan.load(net8)["G_ema"], stylegan.load(net16)["G_ema"]
    from torch_utils.misc import network_digest
    r = run("edit", "--network", net16, "--seeds", "0", "--edit", f"{d}@0-7:2", "--outdir", tmp_path / "e")
    one_line_error(r, "another network", network_digest(G8)[:12], network_digest(G16)[:12], "--force")
    assert not list((tmp_path / "e").glob("*.png"))
    r = run("edit", "--network", net16, "--seeds", "0", "--edit", f"{d}@0-7:2", "--force", "--outdir", tmp_path / "e")
    assert r.exit_code == 0 and (tmp_path / "e" / "seed0000_sefa80_rows0-7.png").is_file(), r.output
    # A direction stamped with this network's digest but its rows counted on an 8-row network.
    from stylegan.editing import load_direction, save_direction
    moved = load_direction(d)
    moved.network_digest = network_digest(G16)
    save_direction(moved, tmp_path / "rows.direction")
    one_line_error(run("edit", "--network", net16, "--seeds", "0", "--edit", f"{tmp_path / 'rows.direction'}:2",
                       "--outdir", tmp_path / "e2"), "ws rows 0-7 of a network with 8 rows", "16")
    # Latents: w from the 8-row network given to the 16-row one.
    lat = tmp_path / "a.w.safetensors"
    stylegan.save_latents(lat, stylegan.pipelines.map_seeds(G8, [1])[:, 0], space="w",
                          network_digest=network_digest(G8))
    one_line_error(run("edit", "--network", net16, "--latent", lat, "--edit", "sefa:1", "--outdir", tmp_path / "e3"),
                   str(lat), "another network", "--force")
    r = run("edit", "--network", net16, "--latent", lat, "--edit", "sefa:1", "--force", "--outdir", tmp_path / "e3")
    assert r.exit_code == 0 and "warning" in r.output, r.output


@pytest.mark.parametrize("bad, words", [("nan", "nan or inf"), ("zero", "all zeros"), ("complex", "real numbers")])
def test_directions_that_would_do_nothing_or_blank_are_refused(tmp_path, bad, words):
    v = np.random.default_rng(0).normal(size=[1, 64])
    v = {"nan": np.where(np.arange(64) == 3, np.nan, v), "zero": np.zeros_like(v), "complex": v * 1j}[bad]
    np.save(tmp_path / "d.npy", v)
    one_line_error(run("edit", "--network", reference_path(NET), "--seeds", "0", "--edit", f"{tmp_path / 'd.npy'}:1",
                       "--outdir", tmp_path / "e"), words)
    assert not list((tmp_path / "e").glob("*.png"))


def test_edit_truncation_must_be_finite(tmp_path):
    one_line_error(run("edit", "--network", reference_path(NET), "--seeds", "0", "--trunc", "nan", "--edit",
                       "sefa:1", "--outdir", tmp_path / "e"), "finite")
    assert not list((tmp_path / "e").glob("*.png"))


# --- edit resumes like the others ----------------------------------------------------------------

EDIT = ["--edit", "sefa:0:-2,0,2", "--edit", "sefa:1@0-3:1"]


def test_edit_resumes_and_sweeps_what_a_killed_run_left(tmp_path):
    net = reference_path(NET)
    whole = tmp_path / "whole"
    assert run("edit", "--network", net, "--seeds", "0-3", *EDIT, "--grid", "--outdir", whole).exit_code == 0
    out = tmp_path / "out"
    assert run("edit", "--network", net, "--seeds", "0-3", *EDIT, "--grid", "--outdir", out).exit_code == 0
    # What a kill -9 leaves: an abandoned temporary and claim, and an output missing; a crash outside
    # the toolkit: an output cut short.
    (out / "seed0002_sefa0.png").unlink()
    data = (out / "seed0001_sefa1_rows0-3.png").read_bytes()
    (out / "seed0001_sefa1_rows0-3.png").write_bytes(data[:100])
    pid = dead_pid()
    (out / f".seed0002_sefa0.{io_files._HOST}-{pid}.tmp.png").write_bytes(b"half")
    io_files.claim_path(out / "seed0002_sefa0.png").write_text(f"{io_files._HOST}-{pid}")
    r = run("edit", "--network", net, "--seeds", "0-3", *EDIT, "--grid", "--outdir", out)
    assert r.exit_code == 0 and "2 edit strip(s) written, 6 already present" in r.output, r.output
    assert files(out).keys() == files(whole).keys()
    for name, data in files(whole).items():
        if name != ".stylegan-run.json":
            assert files(out)[name] == data, name
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".stylegan-run.json"]
    # More seeds extend the folder; other strengths do not mix in.
    r = run("edit", "--network", net, "--seeds", "0-5", *EDIT, "--outdir", out)
    assert r.exit_code == 0 and "4 edit strip(s) written, 8 already present" in r.output, r.output
    one_line_error(run("edit", "--network", net, "--seeds", "0-3", "--edit", "sefa:0:-2,0,3", "--edit",
                       "sefa:1@0-3:1", "--outdir", out), "--edit sefa0 strengths [-2.0,0.0,2.0], not [-2.0,0.0,3.0]", "--overwrite")


def test_edit_outputs_claimed_by_a_live_run_are_left_to_it(tmp_path):
    net = reference_path(NET)
    out = tmp_path / "out"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        out.mkdir()
        io_files.claim_path(out / "seed0001_sefa0.png").write_text(f"{io_files._HOST}-{other.pid}")
        r = run("edit", "--network", net, "--seeds", "0-2", "--edit", "sefa:0:1", "--outdir", out)
        assert r.exit_code == 0 and "2 edit strip(s) written" in r.output and "1 being made by another run" in r.output
        assert not (out / "seed0001_sefa0.png").exists()
    finally:
        other.kill()
        other.wait()
    r = run("edit", "--network", net, "--seeds", "0-2", "--edit", "sefa:0:1", "--outdir", out)
    assert r.exit_code == 0 and "1 edit strip(s) written, 2 already present" in r.output, r.output
    assert not io_files.claim_path(out / "seed0001_sefa0.png").exists()


def test_claims_go_to_one_process(tmp_path):
    target = tmp_path / "a.png"
    with io_files.claim(target) as first:
        with io_files.claim(target) as second:
            assert first and not second
    assert not io_files.claim_path(target).exists()
    io_files.claim_path(target).write_text(f"{io_files._HOST}-{dead_pid()}")
    with io_files.claim(target) as taken:
        assert taken                             # a dead owner's claim is taken over


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9")
def test_edit_killed_outright_then_resumed_equals_an_uninterrupted_run(tmp_path):
    net = reference_path(NET)
    args = ["edit", "--network", str(net), "--seeds", "0-23", "--edit", "sefa:0:-2,0,2", "--video"]
    assert run(*args, "--outdir", tmp_path / "whole").exit_code == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "scripts.cli", *args, "--outdir", str(out)],
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("seed*.png"))) < 3 and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done = len(list(out.glob("seed*.png")))
    assert 0 < done < 24, done
    r = run(*args, "--outdir", out)
    assert r.exit_code == 0 and f"{24 - done} edit strip(s) written, {done} already present" in r.output, r.output
    assert files(out) == files(tmp_path / "whole")


# --- smaller ---------------------------------------------------------------------------------------

def test_out_of_range_layers_are_given_as_a_range(tmp_path):
    r = run("mix", "--network", reference_path(NET), "--rows", "0", "--cols", "1", "--styles", "0-99",
            "--outdir", tmp_path)
    one_line_error(r, "8-99", "0..7")
    assert "8, 9" not in r.output


def test_align_names_a_failed_photo_once(tmp_path):
    from stylegan.pipelines.align import align_photos
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    summary = align_photos([tmp_path / "bad.jpg"], tmp_path / "out", detector=lambda image: [])
    reason = str(summary.failed[str(tmp_path / "bad.jpg")])
    assert str(tmp_path) not in reason and "not an image" in reason
