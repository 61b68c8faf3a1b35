"""Build system for the fused CUDA ops: toolkit discovery, cache key, lock, fallbacks, CLI (CPU only)."""
from __future__ import annotations

import os
import re
import threading
import time
import types
import warnings

import pytest
import torch
from click.testing import CliRunner

import ops
from ops import _build, cuda_ops
from ops._dispatch import choose_impl
from scripts.ops import ops_group


def fake_toolkit(root, cudart=True, header=True):
    """A folder that looks like a CUDA toolkit: bin/nvcc, lib64/libcudart.so, include/cuda_runtime.h."""
    (root / "bin").mkdir(parents=True)
    nvcc = root / "bin" / "nvcc"
    nvcc.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 13.0, V13.0.48'\n")
    nvcc.chmod(0o755)
    (root / "lib64").mkdir()
    if cudart:
        (root / "lib64" / "libcudart.so.13").write_text("")
    (root / "include").mkdir()
    if header:
        (root / "include" / "cuda_runtime.h").write_text("")
    return root


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No CUDA env, PATH holding only tmp_path/bin, defaults under /usr/local hidden."""
    for var in ("CUDA_HOME", "CUDA_PATH", "STYLEGAN_OPS_IMPL", "TORCH_CUDA_ARCH_LIST"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(_build.glob, "glob", _glob_without_usr_local)
    monkeypatch.setattr(_build, "check_cuda_root", _check_without_usr_local)
    monkeypatch.setenv("STYLEGAN_OPS_CACHE", str(tmp_path / "cache"))
    _build.reset()
    yield tmp_path
    _build.reset()


_real_glob = _build.glob.glob
_real_check = _build.check_cuda_root


def _glob_without_usr_local(pattern, *a, **k):
    return [] if pattern.startswith("/usr/local/cuda") else _real_glob(pattern, *a, **k)


def _check_without_usr_local(root):
    return "hidden in tests" if root.startswith("/usr/local/cuda") else _real_check(root)


def test_wrapper_script_followed_to_real_root(clean_env):
    real = fake_toolkit(clean_env / "cuda-13.0")
    wrapper = clean_env / "bin" / "nvcc"
    wrapper.write_text(f"#!/bin/sh\nexec {real}/bin/nvcc \"$@\"\n")
    wrapper.chmod(0o755)
    root, _ = _build.find_cuda_root()
    assert root == str(real)
    assert _build.nvcc_version(root) == "13.0"


def test_symlinked_root_resolved(clean_env):
    real = fake_toolkit(clean_env / "cuda-13.0")
    (clean_env / "cuda").symlink_to(real)
    (clean_env / "bin" / "nvcc").symlink_to(clean_env / "cuda" / "bin" / "nvcc")
    root, _ = _build.find_cuda_root()
    assert root == str(real)


def test_cuda_home_overrides_path(clean_env, monkeypatch):
    on_path = fake_toolkit(clean_env / "cuda-a")
    (clean_env / "bin" / "nvcc").symlink_to(on_path / "bin" / "nvcc")
    chosen = fake_toolkit(clean_env / "cuda-b")
    monkeypatch.setenv("CUDA_HOME", str(chosen))
    assert _build.find_cuda_root()[0] == str(chosen)


def test_root_without_cudart_rejected(clean_env, monkeypatch):
    broken = fake_toolkit(clean_env / "cuda-broken", cudart=False)
    monkeypatch.setenv("CUDA_HOME", str(broken))
    root, notes = _build.find_cuda_root()
    assert root is None
    assert any("libcudart" in n for n in notes)
    assert "cuda_runtime.h" in _build.check_cuda_root(str(fake_toolkit(clean_env / "nohdr", header=False)))


def _load_warnings(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _build.load_op(name) is None
        assert _build.load_op(name) is None
    return [w for w in caught if issubclass(w.category, _build.OpsBuildWarning)]


def test_missing_nvcc_warns_once_and_returns_none(clean_env, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")  # pretend a CUDA torch, so nvcc is the cause
    caught = _load_warnings("upfirdn2d")
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "nvcc" in msg and "CUDA_HOME" in msg and "Fix:" in msg


def test_one_warning_for_a_cause_shared_by_all_ops(clean_env, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert all(_build.load_op(name) is None for name in _build.OPS)
    assert len([w for w in caught if issubclass(w.category, _build.OpsBuildWarning)]) == 1


def test_missing_ninja_named(clean_env, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setenv("CUDA_HOME", str(fake_toolkit(clean_env / "cuda-13.0")))
    monkeypatch.setattr(_build.shutil, "which", lambda n: None)
    assert "pip install ninja" in _build.toolchain().problem


def test_cpu_torch_warns_once_and_returns_none(clean_env, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    caught = _load_warnings("bias_act")
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "CPU-only" in msg and "install a CUDA build of torch" in msg


def test_forced_cuda_raises(clean_env, monkeypatch):
    """Forcing 'cuda' (env or use_impl) turns an unbuildable kernel into an error; 'auto' falls back."""
    monkeypatch.setattr(torch.version, "cuda", None)
    on_gpu = types.SimpleNamespace(is_cuda=True, device=torch.device("cuda"))  # all the dispatch asks of a tensor
    with pytest.warns(_build.OpsBuildWarning):
        assert choose_impl("auto", on_gpu, "filtered_lrelu") == "fast"
    _build.reset()
    with ops.use_impl("cuda"), pytest.raises(ops.OpsBuildError, match="forced.*CPU-only"):
        choose_impl("auto", on_gpu, "filtered_lrelu")
    monkeypatch.setenv("STYLEGAN_OPS_IMPL", "cuda")
    with pytest.raises(ops.OpsBuildError, match="forced.*CPU-only"):
        cuda_ops.kernels("bias_act", on_gpu)
    with ops.use_impl("fast"):  # the code's own choice wins over the environment
        assert choose_impl("auto", on_gpu, "bias_act") == "fast"
    monkeypatch.setenv("STYLEGAN_OPS_IMPL", "gpu")
    with pytest.raises(ValueError, match="STYLEGAN_OPS_IMPL='gpu' is not one of"):
        choose_impl("auto", torch.zeros(1), "bias_act")
    r = CliRunner().invoke(ops_group, ["status"])
    assert r.exit_code == 1 and r.output.strip() == "Error: STYLEGAN_OPS_IMPL='gpu' is not one of ref, fast, cuda"


def test_threads_share_one_build(clean_env, monkeypatch):
    """Two threads asking for an op at once: one build, both get the module."""
    calls = []

    def slow_build(name, *a, **k):
        calls.append(name)
        time.sleep(0.3)
        _build._loaded[name] = f"module {name}"
        return _build.BuildResult(name, "built")

    monkeypatch.setattr(_build, "build_op", slow_build)
    got = []
    threads = [threading.Thread(target=lambda: got.append(_build.load_op("upfirdn2d"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["upfirdn2d"] and got == ["module upfirdn2d"] * 2


def test_missing_sources_named_by_cli(clean_env, monkeypatch):
    """An install without ops/cuda says so, on any torch, instead of blaming the toolchain."""
    empty = clean_env / "empty"
    empty.mkdir()
    monkeypatch.setattr(_build, "SOURCE_DIR", str(empty))
    monkeypatch.setattr(torch.version, "cuda", None)
    r = CliRunner().invoke(ops_group, ["build"])
    assert r.exit_code == 1, r.output
    for name in ops.CUDA_OPS:
        line = next(l for l in r.output.splitlines() if l.startswith(name))
        assert f"kernel sources missing from {empty}" in line and "reinstall stylegan" in line
        assert "CPU-only" not in line and f"{name}.cu" in line
    r = CliRunner().invoke(ops_group, ["status"])
    assert r.exit_code == 0 and r.output.count("on a GPU too: kernel sources missing") == 3, r.output
    # On a GPU machine with a CUDA torch, the missing sources are the reason given, not the toolkit.
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for row in ops.build_status():
        assert row.impl == "fast" and row.reason.startswith("CUDA kernels unavailable: kernel sources missing")


def test_activation_ids_match_the_kernel_enum():
    """ops.ACTIVATIONS holds each id once; the C++ enum in bias_act.h must agree with it."""
    text = open(os.path.join(_build.SOURCE_DIR, "bias_act.h")).read()
    body = re.search(r"enum\s+SgAct\s*\{([^}]*)\}", text).group(1)
    enum, value = {}, -1
    for item in (i.strip() for i in body.split(",") if i.strip()):
        name, _, explicit = (p.strip() for p in item.partition("="))
        value = int(explicit) if explicit else value + 1
        enum[name] = value
    assert enum == {f"ACT_{name.upper()}": a.cuda_id for name, a in ops.ACTIVATIONS.items()}


def test_cli_build_fails_per_op_on_cpu_torch(clean_env, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    r = CliRunner().invoke(ops_group, ["build"])
    assert r.exit_code == 1, r.output
    for name in _build.OPS:
        line = next(l for l in r.output.splitlines() if l.startswith(name))
        assert "failed" in line and "CPU-only" in line
    assert "cache folder: " + str(clean_env / "cache") in r.output


def test_cli_status_reports_without_building(clean_env, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(_build, "build_op", lambda *a, **k: pytest.fail("status must not build"))
    r = CliRunner().invoke(ops_group, ["status"])
    assert r.exit_code == 0, r.output
    for name in _build.OPS:
        assert any(l.startswith(name) and " fast " in l for l in r.output.splitlines())
    monkeypatch.setenv("STYLEGAN_OPS_IMPL", "cuda")
    r = CliRunner().invoke(ops_group, ["status"])
    assert r.exit_code == 0 and "forced by STYLEGAN_OPS_IMPL; it will fail" in r.output
    assert "Examples:" in CliRunner().invoke(ops_group, ["--help"]).output


def test_cli_reports_the_cpu_kernel(clean_env, monkeypatch):
    """`ops status` names the CPU kernel's state without building; `ops build` says why it failed."""
    monkeypatch.setattr(torch.version, "cuda", None)
    from ops import _cpu
    import ops
    real_build = ops.build_cpu
    monkeypatch.setattr(ops, "build_cpu", lambda *a, **k: pytest.fail("status must not build"))
    monkeypatch.setenv(_cpu.ENV_VAR, "0")
    line = lambda out: next(l for l in out.splitlines() if l.startswith("filtered_lrelu (cpu)"))
    assert "off (STYLEGAN_CPU_KERNELS=0)" in line(CliRunner().invoke(ops_group, ["status"]).output)
    monkeypatch.delenv(_cpu.ENV_VAR)
    # PATH holds no ninja here: that is the reason given, and the build fails with it.
    assert "ninja not found" in line(CliRunner().invoke(ops_group, ["status"]).output)
    monkeypatch.setattr(ops, "build_cpu", real_build)
    r = CliRunner().invoke(ops_group, ["build", "--cpu-only"])
    assert r.exit_code == 1 and "failed" in line(r.output) and "ninja not found" in line(r.output)
    # A CPU-only kernel can be named; it builds alone (no CUDA op is attempted).
    r = CliRunner().invoke(ops_group, ["build", "conv3x3"])
    rows = [l.split()[0] for l in r.output.splitlines() if l.split()[:1] and l.split()[0] in ops.CUDA_OPS + ops.CPU_OPS]
    assert r.exit_code == 1 and rows == ["conv3x3"] and "ninja not found" in r.output, r.output
