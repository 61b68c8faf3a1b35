"""A normal install is a whole install: the wheel ships the kernel sources; `python -m stylegan`; convert."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import stylegan
from ops import _build
from scripts.cli import main

from conftest import NVIDIA_FIXTURES, REPO, reference_path


def test_wheel_ships_kernel_sources(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("stylegan-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for op in _build.OPS:
        for path in _build.source_files(op) + _build.header_files(op):
            rel = "ops/cuda/" + path.rsplit("/", 1)[-1]
            assert rel in names, rel
    assert "stylegan/__main__.py" in names and "stylegan/io/latents.py" in names


def test_missing_sources_are_named_before_the_toolchain(tmp_path):
    # Even on a CPU-only torch (no toolchain), an incomplete install is what gets reported.
    for op in _build.OPS:
        r = _build.build_op(op, source_dir=str(tmp_path))
        assert r.status == "failed" and "kernel sources missing" in r.reason and "reinstall" in r.reason
    assert _build.missing_sources("bias_act") is None      # this checkout has them


def test_python_dash_m_is_the_cli():
    a = subprocess.run([sys.executable, "-m", "stylegan", "--help"], capture_output=True, text=True, cwd=REPO)
    assert a.returncode == 0, a.stderr
    assert a.stdout.startswith("Usage: stylegan ")
    listed = {line.split()[0] for line in a.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(main.commands)
    v = subprocess.run([sys.executable, "-m", "stylegan", "--version"], capture_output=True, text=True, cwd=REPO)
    assert v.stdout.strip() == f"stylegan, version {stylegan.__version__}"


@pytest.mark.parametrize("name", NVIDIA_FIXTURES + ["tf_sg2", "rosinality"])
def test_convert_every_format(tmp_path, name):
    src = reference_path(f"{name}.pt" if name == "rosinality" else f"{name}.pkl")
    out = tmp_path / "sub" / "m.stylegan"
    r = CliRunner().invoke(main, ["convert", str(src), str(out)])
    assert r.exit_code == 0, r.output
    a, b = stylegan.load(src), stylegan.load(out)
    assert list(a.keys()) == list(b.keys()) and b.format == "stylegan"
    for key in a.keys():
        sa, sb = a[key].state_dict(), b[key].state_dict()
        assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa), key
    G, H = a.generator, b.generator
    z = torch.from_numpy(np.random.RandomState(0).randn(2, G.z_dim))
    c = torch.eye(G.c_dim)[:2] if G.c_dim else None
    with torch.no_grad():
        assert torch.equal(G(z, c, noise_mode="const"), H(z, c, noise_mode="const"))
    assert a.metadata == b.metadata


def test_convert_refuses(tmp_path):
    src = reference_path("sg3_t.pkl")
    out = tmp_path / "m.stylegan"
    assert CliRunner().invoke(main, ["convert", str(src), str(out)]).exit_code == 0
    cases = [
        ([str(src), str(out)], "exists: pass --overwrite"),
        ([str(out), str(out), "--overwrite"], "is the input file"),
        ([str(tmp_path / "nope.pkl"), str(tmp_path / "x.stylegan")], "nope.pkl"),
        ([str(src), str(out / "x.stylegan")], "not a folder"),
    ]
    for args, message in cases:
        r = CliRunner().invoke(main, ["convert", *args])
        assert r.exit_code != 0 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert CliRunner().invoke(main, ["convert", str(src), str(out), "--overwrite"]).exit_code == 0
