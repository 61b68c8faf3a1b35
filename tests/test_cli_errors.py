"""Bad inputs on the command line: one line, a non-zero exit, nothing written half."""
from __future__ import annotations

import numpy as np
import pytest

import stylegan

from conftest import one_line_error, reference_path
from conftest import run_cli as run


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_truncation(tmp_path, value):
    net = reference_path("sg2ada_skip.pkl")
    one_line_error(run("generate", "--network", net, "--seeds", "0", "--trunc", value, "--outdir", tmp_path / "g"),
                   "finite")
    one_line_error(run("mix", "--network", net, "--rows", "0", "--cols", "1", "--trunc", value,
                       "--outdir", tmp_path / "m"), "finite")
    one_line_error(run("video", "--network", net, "--seeds", "0,1", "--trunc", value, "--out", tmp_path / "v.gif"),
                   "finite")
    assert not list((tmp_path / "g").glob("*.png")) and not (tmp_path / "v.gif").exists()
    G = stylegan.load(net)["G_ema"]
    for call in (lambda: stylegan.generate(G, [0], psi=float(value)),
                 lambda: stylegan.style_mix(G, [0], [1], [0], psi=float(value)),
                 lambda: list(stylegan.interpolate(G, [0, 1], frames_per_seed=2, psi=float(value)))):
        with pytest.raises(ValueError, match="finite"):
            call()


def test_video_creates_folders_and_names_unwritable_ones(tmp_path):
    net = reference_path("sg2ada_skip.pkl")
    out = tmp_path / "sub" / "dir" / "w.gif"
    r = run("video", "--network", net, "--seeds", "0,1", "--frames-per-seed", "2", "--out", out)
    assert r.exit_code == 0 and out.exists(), r.output
    (tmp_path / "afile").write_text("x")
    one_line_error(run("video", "--network", net, "--seeds", "0,1", "--out", tmp_path / "afile" / "w.gif"),
                   "not a folder")
    one_line_error(run("video", "--network", net, "--seeds", "0,1", "--out", "/proc/stylegan-test/w.gif"),
                   "cannot")


def test_library_speaks_python_the_cli_speaks_flags(tmp_path):
    G = stylegan.load(reference_path("sg2ada_skip.pkl"))["G_ema"]
    with pytest.raises(ValueError) as e:
        stylegan.generate(G, [0], class_idx=1)
    assert "--" not in str(e.value) and "class_idx" in str(e.value)
    one_line_error(run("generate", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0", "--class", "1",
                       "--outdir", tmp_path), "--class")
    cond = reference_path("sg2ada_resnet_cond.pkl")
    one_line_error(run("generate", "--network", cond, "--seeds", "0", "--outdir", tmp_path / "c"), "--class")
