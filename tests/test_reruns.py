"""Seeds stay lazy and counts are true; reruns never mix two sets; outputs are checked before work."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import stylegan
from scripts.cli import main
from stylegan.pipelines import parse_int_list
from stylegan.pipelines.image_set import grid_image

from conftest import reference_path

NET = "sg2ada_skip.pkl"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(r, *words):
    assert r.exit_code != 0, r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, r.output
    for w in words:
        assert w in r.output, r.output


def test_seed_lists_are_lazy_and_deduplicated():
    big = parse_int_list("0-4294967295")
    assert len(big) == 2 ** 32 and big[-1] == 2 ** 32 - 1 and big[123456789] == 123456789
    share = big[1::8]
    assert len(share) == 2 ** 29 and list(share[:3]) == [1, 9, 17]
    seeds = parse_int_list("5,0-9,3,20-22,21")
    assert list(seeds) == [5, 0, 1, 2, 3, 4, 6, 7, 8, 9, 20, 21, 22] and len(seeds) == 13
    assert list(seeds[::4]) == [5, 3, 8, 22] and seeds[-1] == 22


def test_duplicate_seeds_count_true(tmp_path):
    r = run("generate", "--network", reference_path(NET), "--seeds", "0-3,2", "--outdir", tmp_path)
    assert r.exit_code == 0 and "4 images written" in r.output, r.output
    assert len(list(tmp_path.glob("seed*.png"))) == 4


def test_huge_seed_range_starts_streaming(tmp_path, monkeypatch):
    # The whole documented range: no list is built; the run writes batch by batch (stopped after one).
    from stylegan.pipelines import image_set
    calls = []

    def stop(p):
        calls.append(p)
        raise KeyboardInterrupt

    G = stylegan.load(reference_path(NET))["G_ema"]
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
        one_line(r, str(out))          # the folder is named, the (missing) network never read


def test_unwritable_outdir_permission(tmp_path, monkeypatch):
    # Running as root, a chmod cannot make a folder unwritable: refuse the probe file instead.
    from stylegan import _files
    real = _files.temp_path

    class Refused(type(real(tmp_path / "x"))):
        def write_bytes(self, data):
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_files, "temp_path", lambda path: Refused(real(path)) if path.name == "write-probe"
                        else real(path))
    r = run("generate", "--network", reference_path(NET), "--seeds", "0-1", "--outdir", tmp_path / "o")
    one_line(r, "Permission denied")
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
    one_line(run(*args, "--seeds", "0-3"), flag, "--overwrite")
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before     # nothing written
    r = run(*args, "--seeds", "0-3", "--overwrite")                                     # starts afresh
    assert r.exit_code == 0 and "4 images written" in r.output, r.output
    assert run(*args, "--seeds", "0-3").exit_code == 0                                  # now that is the record


def test_rerun_class_change_stops(tmp_path):
    base = ["generate", "--network", reference_path("sg2ada_resnet_cond.pkl"), "--seeds", "0", "--outdir", tmp_path]
    assert run(*base, "--class", "1").exit_code == 0
    one_line(run(*base, "--class", "2"), "--class 1, not 2")


def test_rerun_same_settings_skips_and_fills_w(tmp_path):
    base = ["generate", "--network", reference_path(NET), "--seeds", "0-2", "--trunc", "0.7", "--outdir", tmp_path]
    assert run(*base).exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("seed*.png")}
    r = run(*base, "--save-w")
    assert r.exit_code == 0 and "0 images written, 3 already present, 3 w files" in r.output, r.output
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("seed*.png")} == before   # images untouched
    G = stylegan.load(reference_path(NET))["G_ema"]
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
