"""A normal install is a whole install: the wheel ships the kernel sources; `python -m stylegan`."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import stylegan
from ops import _build, _cpu
from scripts.cli import main

from conftest import REPO


PACKAGES = ("stylegan", "ops", "torch_utils", "scripts")


def test_wheel_ships_kernel_sources_and_every_module(tmp_path):
    # Built from a clean copy: setuptools reuses build/lib, where a deleted module would linger.
    tree = tmp_path / "tree"
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(tree)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("stylegan-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    kernels = {f"ops/cuda/{p.name}" for p in (REPO / "ops" / "cuda").iterdir() if p.suffix in (".cu", ".cpp", ".h")}
    for op in _build.OPS:  # what the build needs is among them
        assert {f"ops/cuda/{os.path.basename(p)}" for p in _build.source_files(op) + _build.header_files(op)} <= kernels
    assert kernels <= names, kernels - names
    cpu_kernels = {f"ops/cpu/{os.path.basename(_cpu.source(op))}" for op in _cpu.CPU_OPS}
    assert cpu_kernels <= names, cpu_kernels - names
    modules = {p.relative_to(REPO).as_posix() for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")
               if "__pycache__" not in p.parts}
    shipped = {n for n in names if n.endswith(".py")}
    assert shipped == modules, (modules - shipped, shipped - modules)
    assert "stylegan/__main__.py" in shipped
    # The explorer's page ships inside the package, every file of it.
    static = {p.relative_to(REPO).as_posix() for p in (REPO / "stylegan" / "serve" / "static").iterdir()}
    assert {"stylegan/serve/static/index.html", "stylegan/serve/static/app.js"} <= static
    assert static <= names, static - names


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
