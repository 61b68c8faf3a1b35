"""Bad inputs on the command line: one line, a non-zero exit, nothing written half."""
from __future__ import annotations

import numpy as np
import torch
import pytest

import stylegan

from conftest import fixture_model, one_line_error, reference_path, run


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
    G = fixture_model()["G_ema"]
    with pytest.raises(ValueError) as e:
        stylegan.generate(G, [0], class_idx=1)
    assert "--" not in str(e.value) and "class_idx" in str(e.value)
    one_line_error(run("generate", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0", "--class", "1",
                       "--outdir", tmp_path), "--class")
    cond = reference_path("sg2ada_resnet_cond.pkl")
    one_line_error(run("generate", "--network", cond, "--seeds", "0", "--outdir", tmp_path / "c"), "--class")


def test_errors_name_their_parameter_and_the_cli_says_its_flag(tmp_path):
    """A library error carries the parameter at fault (`param`); its text spells it as Python does,
    and the command line says the flag (FLAGS in scripts/common.py), value included."""
    from stylegan._errors import ParamError
    G = fixture_model()["G_ema"]
    with pytest.raises(ParamError) as e:
        stylegan.generate(G, [0], psi=0.5, truncation_cutoff=99)
    assert e.value.param == "truncation_cutoff" and str(e.value).startswith("truncation_cutoff=99 out of range")
    with pytest.raises(ParamError, match="^batch_size must be at least 1") as e:
        stylegan.pipelines.write_image_set(G, [0], tmp_path / "b", batch_size=0)
    assert e.value.param == "batch_size"
    net = reference_path("sg2ada_skip.pkl")
    r = run("generate", "--network", net, "--seeds", "0", "--trunc-cutoff", "99", "--outdir", tmp_path / "g")
    one_line_error(r, "--trunc-cutoff 99 out of range")
    assert "truncation_cutoff" not in r.output
    # An existing output: the library says overwrite=True, the command line --overwrite.
    from stylegan.io import save_latents
    save_latents(tmp_path / "w.safetensors", torch.zeros(1, G.w_dim), space="w")
    with pytest.raises(FileExistsError, match=r"exists: pass overwrite=True to replace it$") as e:
        save_latents(tmp_path / "w.safetensors", torch.zeros(1, G.w_dim), space="w")
    from scripts.common import cli_error
    assert cli_error(e.value).message.endswith("exists: pass --overwrite to replace it")
    # Only the parameters the error names are spelled: text that happens to look alike stays.
    e = ParamError("{a{b}} {x} {batch_size=3}", "batch_size")
    assert str(e) == "{a{b}} {x} batch_size=3" and cli_error(e).message == "{a{b}} {x} --batch 3"
