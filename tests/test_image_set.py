"""Seeds stay lazy and counts are true; reruns never mix two sets; outputs are checked before work."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from stylegan.pipelines import parse_int_list
from stylegan.pipelines.image_set import grid_image

from conftest import fixture_model, one_line_error, reference_path, run

NET = "sg2ada_skip.pkl"


def test_seed_lists_are_lazy_and_deduplicated():
    big = parse_int_list("0-4294967295")
    assert len(big) == 2 ** 32 and big[-1] == 2 ** 32 - 1 and big[123456789] == 123456789
    share = big[1::8]
    assert len(share) == 2 ** 29 and list(share[:3]) == [1, 9, 17]
    seeds = parse_int_list("5,0-9,3,20-22,21")
    assert list(seeds) == [5, 0, 1, 2, 3, 4, 6, 7, 8, 9, 20, 21, 22] and len(seeds) == 13
    assert list(seeds[::4]) == [5, 3, 8, 22] and seeds[-1] == 22


def test_duplicate_seeds_count_true(tmp_path):
    # '0-3,2' names four seeds: four files, and the summary says four.
    r = run("generate", "--network", reference_path(NET), "--seeds", "0-3,2", "--outdir", tmp_path)
    assert r.exit_code == 0 and "4 images written, 0 already present" in r.output, r.output
    assert len(list(tmp_path.glob("seed*.png"))) == 4
    # Not a terminal: log lines with the count (none when it took under 2 s), not a bar's bare label.
    assert all(line.startswith("images   ") and "/4  written" in line for line in r.output.splitlines()[:-1])


def test_cli_seed_option_is_lazy():
    from scripts.common import IntList
    seeds = IntList().convert("0-4294967295", None, None)
    assert len(seeds) == 2 ** 32 and seeds[-1] == 2 ** 32 - 1


def test_huge_seed_range_starts_streaming(tmp_path):
    # The whole documented range: no list is built; the run writes batch by batch (stopped after one).
    from stylegan.pipelines import image_set
    calls = []

    def stop(p):
        calls.append(p)
        raise KeyboardInterrupt

    G = fixture_model()["G_ema"]
    with pytest.raises(KeyboardInterrupt):
        image_set.write_image_set(G, parse_int_list("0-4294967295"), tmp_path, batch_size=2, progress=stop)
    assert calls[0].done == 2 and calls[0].total == 2 ** 32
    assert sorted(p.name for p in tmp_path.glob("seed*.png")) == ["seed0000.png", "seed0001.png"]


@pytest.mark.parametrize("where", ["file", "proc"])
def test_unwritable_outdir_fails_before_work(tmp_path, where):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "sub" if where == "file" else "/proc/stylegan-out"
    for cmd in (["generate", "--seeds", "0-1"], ["mix", "--rows", "0", "--cols", "1"]):
        r = run(cmd[0], "--network", tmp_path / "not-even-loaded.pkl", *cmd[1:], "--outdir", out)
        one_line_error(r, str(out))          # the folder is named, the (missing) network never read


def test_unwritable_outdir_permission(tmp_path, monkeypatch):
    # Running as root, a chmod cannot make a folder unwritable: refuse the probe file instead.
    from stylegan.io import files as io_files
    real = io_files.temp_path

    class Refused(type(real(tmp_path / "x"))):
        def write_bytes(self, data):
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io_files, "temp_path", lambda path: Refused(real(path)) if path.name == "write-probe"
                        else real(path))
    r = run("generate", "--network", reference_path(NET), "--seeds", "0-1", "--outdir", tmp_path / "o")
    one_line_error(r, "Permission denied")
    assert not list((tmp_path / "o").glob("*.png"))


@pytest.mark.parametrize("change, flag", [
    (["--trunc", "0.5"], "--trunc 0.7, not 0.5"),
    (["--noise-mode", "none"], "--noise-mode const, not none"),
    (["--network", "sg3_sg2.pkl"], "--network"),
])
def test_rerun_with_other_settings_stops(tmp_path, change, flag):
    base = ["generate", "--network", reference_path(NET), "--seeds", "0-1", "--trunc", "0.7", "--outdir", tmp_path]
    assert run(*base).exit_code == 0
    args = list(base)
    if change[0] in args:
        args[args.index(change[0]) + 1] = reference_path(change[1]) if change[0] == "--network" else change[1]
    else:
        args += change
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    one_line_error(run(*args, "--seeds", "0-3"), flag, "--overwrite")
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before     # nothing written
    r = run(*args, "--seeds", "0-3", "--overwrite")                                     # starts afresh
    assert r.exit_code == 0 and "4 images written" in r.output, r.output
    assert run(*args, "--seeds", "0-3").exit_code == 0                                  # now that is the record


def test_rerun_class_change_stops(tmp_path):
    base = ["generate", "--network", reference_path("sg2ada_resnet_cond.pkl"), "--seeds", "0", "--outdir", tmp_path]
    assert run(*base, "--class", "1").exit_code == 0
    one_line_error(run(*base, "--class", "2"), "--class 1, not 2")


def test_rerun_same_settings_skips_and_fills_w(tmp_path):
    base = ["generate", "--network", reference_path(NET), "--seeds", "0-2", "--trunc", "0.7", "--outdir", tmp_path]
    assert run(*base).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("seed*.png")}
    r = run(*base, "--save-w")
    assert r.exit_code == 0 and "0 images written, 3 already present, 3 w files" in r.output, r.output
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("seed*.png")} == before   # images untouched
    G = fixture_model()["G_ema"]
    want = stylegan.pipelines.map_seeds(G, [0, 1, 2], 0.7)
    for s in range(3):
        got = stylegan.load_latents(tmp_path / f"seed{s:04d}.w.safetensors").ws
        assert torch.equal(got[0], want[s])


def test_grid_rebuilt_when_seeds_grow(tmp_path):
    base = ["generate", "--network", reference_path(NET), "--grid", "2x2", "--outdir", tmp_path]
    assert run(*base, "--seeds", "0-1").exit_code == 0
    half = np.asarray(Image.open(tmp_path / "grid0000.png"))
    assert (half[32:] == 0).all()                                     # two cells empty
    assert run(*base, "--seeds", "0-3").exit_code == 0
    full = np.asarray(Image.open(tmp_path / "grid0000.png"))
    fresh = grid_image(np.stack([np.asarray(Image.open(tmp_path / f"seed{s:04d}.png")) for s in range(4)]), 2, 2)
    np.testing.assert_array_equal(full, fresh)


def test_seed_lists_match_a_plain_dedupe():
    # Truth: walk the ranges one integer at a time, keeping the first occurrence of each.
    rng = np.random.default_rng(0)
    for _ in range(300):
        parts = [(int(a), int(a + n)) for a, n in zip(rng.integers(0, 40, 6), rng.integers(0, 9, 6))]
        spec = ",".join(f"{a}-{b}" for a, b in parts)
        want = list(dict.fromkeys(x for a, b in parts for x in range(a, b + 1)))
        got = parse_int_list(spec)
        assert list(got) == want and len(got) == len(want)
        assert [got[i] for i in range(-len(want), len(want))] == want + want
        for k in (1, 2, 3):
            for r in range(k):
                assert list(got[r::k]) == want[r::k]
    assert parse_int_list([3, 1, 3, 2, 1]) == [3, 1, 2]
    # A walk through key seeds (video) may come back to one: unique=False keeps the repeats, lazily.
    walk = parse_int_list("0,1,0,2-3,2", unique=False)
    assert list(walk) == [0, 1, 0, 2, 3, 2] and walk[2] == 0 and parse_int_list(walk) == [0, 1, 2, 3]
    assert len(parse_int_list("0-4294967295,7", unique=False)) == 2 ** 32 + 1


def test_building_blocks_carry_gradients():
    # Projection and training differentiate through map_seeds and synthesize_float.
    from stylegan.pipelines import map_seeds, synthesize
    from stylegan.pipelines.generate import synthesize_float
    from stylegan.images import to_uint8
    G = fixture_model()["G_ema"]
    ws = map_seeds(G, [0, 1], 0.7).detach().requires_grad_(True)
    img = synthesize_float(G, ws)
    assert img.requires_grad and img.shape == (2, G.img_channels, G.img_resolution, G.img_resolution)
    img.square().mean().backward()
    assert ws.grad is not None and torch.isfinite(ws.grad).all() and ws.grad.abs().sum() > 0
    # The float path is the uint8 path before rounding (same machine: bit for bit).
    np.testing.assert_array_equal(to_uint8(img), synthesize(G, ws))
    # map_seeds keeps the graph to trainable weights (no inference mode inside it).
    Gt = stylegan.load(reference_path(NET), trainable=True).generator
    w = map_seeds(Gt, [0], 0.7)
    assert w.requires_grad
    w.sum().backward()
    assert Gt.mapping.fc0.weight.grad is not None


def test_library_reports_progress_and_prints_nothing(tmp_path, capsys):
    G = fixture_model()["G_ema"]
    events = []
    s = stylegan.pipelines.write_image_set(G, [0, 1, 2, 1, 0, 3, 4], tmp_path, batch_size=2, progress=events.append)
    assert [(e.stage, e.done, e.total, e.stats["written"]) for e in events] == [
        ("generate", 2, 5, 2), ("generate", 4, 5, 4), ("generate", 5, 5, 5)]
    assert (s.written, s.skipped) == (5, 0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    events.clear()
    s = stylegan.pipelines.write_image_set(G, range(7), tmp_path, batch_size=4, progress=events.append)
    assert (s.written, s.skipped) == (2, 5) and [(e.done, e.stats["written"]) for e in events] == [(4, 0), (7, 2)]


def test_library_mismatch_is_typed_and_writes_nothing(tmp_path):
    from stylegan.io.run_record import RUN_RECORD, RunMismatchError
    G = fixture_model()["G_ema"]
    stylegan.pipelines.write_image_set(G, [0], tmp_path, psi=0.7)
    record = (tmp_path / RUN_RECORD).read_text()
    import json
    meta = json.loads(record)
    assert meta["psi"] == 0.7 and meta["noise_mode"] == "const" and meta["stylegan_version"] == stylegan.__version__
    from torch_utils.misc import network_digest
    assert meta["network"] == network_digest(G)
    with pytest.raises(RunMismatchError) as e:
        stylegan.pipelines.write_image_set(G, [0, 1], tmp_path, psi=0.5, noise_mode="none")
    assert e.value.differences == {"psi": (0.7, 0.5), "noise_mode": ("const", "none")}
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value) and "--" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [RUN_RECORD, "seed0000.png"]
    assert (tmp_path / RUN_RECORD).read_text() == record
    # overwrite=True regenerates and rewrites the record.
    s = stylegan.pipelines.write_image_set(G, [0, 1], tmp_path, psi=0.5, noise_mode="none", overwrite=True)
    assert s.written == 2 and json.loads((tmp_path / RUN_RECORD).read_text())["psi"] == 0.5


@pytest.mark.parametrize("kwargs, message", [
    ({"noise_mode": "loud"}, "unknown noise_mode .loud."),
    ({"batch_size": 0}, "batch_size"),
    ({"fmt": "gif"}, "format"),
    ({"psi": float("nan")}, "psi"),
    ({"seeds": [2 ** 32 - 1, 2 ** 32]}, "out of range"),
])
def test_bad_arguments_fail_before_the_folder_is_touched(tmp_path, kwargs, message):
    G = fixture_model()["G_ema"]
    args = {"seeds": [0, 1], **kwargs}
    with pytest.raises(ValueError, match=message):
        stylegan.pipelines.write_image_set(G, args.pop("seeds"), tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()


def test_seed_beyond_range_is_one_line_before_work(tmp_path):
    r = run("generate", "--network", reference_path(NET), "--seeds", "4294967294-4294967296", "--outdir", tmp_path)
    one_line_error(r, "4294967296", "out of range")
    assert not list(tmp_path.glob("seed*"))


def test_unreadable_run_record_is_one_line(tmp_path):
    (tmp_path / ".stylegan-run.json").write_text("{not json")
    r = run("generate", "--network", reference_path(NET), "--seeds", "0", "--outdir", tmp_path)
    one_line_error(r, "run record", "--overwrite")
    assert not list(tmp_path.glob("seed*"))


def test_ensure_writable_dir_library(tmp_path):
    # Library face of check_outdir: ValueError with one line, the folder created when possible.
    from stylegan.io.files import ensure_writable_dir
    assert ensure_writable_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []               # the probe file is gone
    (tmp_path / "f").write_text("x")
    for bad in (tmp_path / "f", tmp_path / "f" / "sub", "/proc/stylegan-out"):
        with pytest.raises(ValueError) as e:
            ensure_writable_dir(bad)
        assert "\n" not in str(e.value) and str(bad) in str(e.value)


def test_folder_with_images_but_no_record_is_refused(tmp_path):
    # Images of unknown origin (an older toolkit, another tool): resuming could mix two sets.
    G = fixture_model()["G_ema"]
    Image.fromarray(np.zeros([8, 8, 3], np.uint8)).save(tmp_path / "seed0000.png")
    r = run("generate", "--network", reference_path(NET), "--seeds", "0-1", "--outdir", tmp_path)
    one_line_error(r, "no run record", "--overwrite")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0000.png"]
    s = stylegan.pipelines.write_image_set(G, [0, 1], tmp_path, overwrite=True)
    assert s.written == 2 and (tmp_path / ".stylegan-run.json").exists()
    assert np.asarray(Image.open(tmp_path / "seed0000.png")).shape == (G.img_resolution, G.img_resolution, 3)
