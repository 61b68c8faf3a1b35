"""The fused kernels' first-use check, on the CPU: the CPU emulation of the kernels stands in for a
GPU build, and deliberately broken copies of it for a wrong build or one that cannot launch."""
from __future__ import annotations

import types
import warnings

import pytest
import torch
from click.testing import CliRunner

import ops
from ops import _build, _selfcheck, cuda_ops
from ops._impl import cuda_required
from scripts.ops import ops_group

CPU = torch.device("cpu")


@pytest.fixture
def fake_build(K, monkeypatch, tmp_path):
    """`_build` loads `module` (the emulation, unless a test swaps it) as if it had built op NAME into
    tmp_path/NAME; impl='cuda' on CPU tensors goes through load_op, check included."""
    state = types.SimpleNamespace(module=K, builds=0, folder=lambda name: tmp_path / name)

    def build_op(name, *a, **k):
        state.builds += 1
        state.folder(name).mkdir(exist_ok=True)
        _build._loaded[name] = state.module
        _build._folders[name] = str(state.folder(name))
        return _build.BuildResult(name, "built", path=str(state.folder(name)))

    monkeypatch.setattr(_build, "build_op", build_op)
    monkeypatch.setattr(cuda_ops, "kernels", lambda name, x: _build.load_op(name, x.device, required=cuda_required()))
    monkeypatch.delenv("STYLEGAN_OPS_IMPL", raising=False)
    _build.reset()
    yield state
    _build.reset()


class Broken:
    """The emulation with one entry point altered: `wrong` scales bias_act's output (and hence its
    gradients) by 1.01; `launch` raises the error a build without this GPU's code gives."""

    def __init__(self, K, how):
        self.K, self.how = K, how

    def __getattr__(self, name):
        real = getattr(self.K, name)
        if name != "bias_act":
            return real

        def call(*args):
            if self.how == "launch":
                raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
            return real(*args) * 1.01
        return call


def test_the_kernels_pass_their_own_check(K):
    for name in ops.CUDA_OPS:
        verdict = _selfcheck.run(name, K, CPU)
        assert verdict.ok, verdict
        assert "comparisons" in verdict.detail


@pytest.mark.parametrize("how", ["wrong", "launch"])
def test_a_failing_kernel_warns_once_and_the_reference_path_runs(fake_build, how):
    fake_build.module = Broken(fake_build.module, how)
    x = torch.randn(2, 3, 4, 4)
    b = torch.randn(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y1 = ops.bias_act(x, b, act="lrelu", clamp=256, impl="cuda")
        y2 = ops.bias_act(x, b, act="lrelu", clamp=256, impl="cuda")
    msgs = [str(w.message) for w in caught if issubclass(w.category, ops.OpsBuildWarning)]
    assert len(msgs) == 1, msgs
    assert "bias_act" in msgs[0] and "first-use check" in msgs[0] and "PyTorch path" in msgs[0]
    if how == "wrong":  # the numbers: which comparison, how far off
        assert "error 1.00e-02" in msgs[0] and "tolerance" in msgs[0]
    else:
        assert "no kernel image is available" in msgs[0]
    want = ops.bias_act(x, b, act="lrelu", clamp=256, impl="ref")
    assert torch.equal(y1, want) and torch.equal(y2, want)
    # The other ops, whose kernels are fine, still run fused.
    assert _build.load_op("upfirdn2d", CPU) is fake_build.module


def test_verdict_stored_with_the_build_and_not_rerun(fake_build, monkeypatch):
    runs = []
    real_run = _selfcheck.run
    monkeypatch.setattr(_selfcheck, "run", lambda *a: runs.append(a[0]) or real_run(*a))
    assert _build.load_op("bias_act", CPU) is fake_build.module
    assert _build.load_op("bias_act", CPU) is fake_build.module
    assert runs == ["bias_act"]
    stored = _selfcheck.stored_verdicts(str(fake_build.folder("bias_act")))
    assert len(stored) == 1 and stored[0].ok and stored[0].device == "cpu"
    _build.reset()  # a new process: the stored verdict is read, not recomputed
    assert _build.load_op("bias_act", CPU) is fake_build.module
    assert runs == ["bias_act"] and fake_build.builds == 2


def test_forced_cuda_raises_on_a_failing_check(fake_build):
    fake_build.module = Broken(fake_build.module, "wrong")
    with ops.use_impl("cuda"), pytest.raises(ops.OpsBuildError, match="first-use check.*forced"):
        ops.bias_act(torch.randn(2, 3), act="lrelu")


def test_check_leaves_the_callers_state_alone(fake_build):
    """Inside inference mode, under no_grad, with the global RNG seeded: the check still computes
    gradients and draws nothing from the user's generator."""
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    with torch.inference_mode():
        ops.bias_act(torch.zeros(1, 3), act="lrelu", impl="cuda")
    assert torch.equal(torch.rand(3), want)
    assert _selfcheck.stored_verdicts(str(fake_build.folder("bias_act")))[0].ok


def test_ops_status_shows_the_verdicts(fake_build, monkeypatch):
    """`stylegan ops status` on a GPU machine: the stored verdict of the build it would use, a
    failed one making the op fall back."""
    fake_build.module = Broken(fake_build.module, "wrong")
    monkeypatch.setattr(_selfcheck, "device_label", lambda device: "FakeGPU (sm_90, driver 1)")
    with pytest.warns(ops.OpsBuildWarning, match="first-use check"):
        assert _build.load_op("bias_act", CPU) is None
    fake_build.module = fake_build.module.K
    assert _build.load_op("upfirdn2d", CPU) is not None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    tc = lambda: _build.Toolchain(root="/cuda", nvcc_version="13.0", archs=["9.0+PTX"])
    monkeypatch.setattr(_build, "toolchain", tc)
    monkeypatch.setattr(ops, "toolchain", tc)
    monkeypatch.setattr(_build, "cached_build", lambda name, tc: str(fake_build.folder(name)))
    rows = {r.name: r for r in ops.build_status()}
    assert rows["bias_act"].impl == "fast" and "check FAILED on FakeGPU (sm_90, driver 1)" in rows["bias_act"].reason
    assert "error 1.00e-02" in rows["bias_act"].reason
    out = CliRunner().invoke(ops_group, ["status"]).output
    line = next(l for l in out.splitlines() if l.startswith("bias_act"))
    assert " fast " in line and "FAILED on FakeGPU" in line


def test_ops_build_reports_the_check_and_fails_on_it(monkeypatch):
    verdicts = {"bias_act": _selfcheck.Verdict(False, "FakeGPU", "bias_act lrelu float16 forward: error 3.00e-01")}
    monkeypatch.setattr(ops, "build", lambda name, tc: _build.BuildResult(
        name, "cached", path=f"/cache/{name}", check=verdicts.get(name, _selfcheck.Verdict(True, "FakeGPU", "ok"))))
    r = CliRunner().invoke(ops_group, ["build", "bias_act", "upfirdn2d"])
    lines = {l.split()[0]: l for l in r.output.splitlines() if l.split()[:1] and l.split()[0] in ops.CUDA_OPS}
    assert r.exit_code == 1 and "failed to build or their check" in r.output
    assert "check FAILED on FakeGPU: bias_act lrelu float16 forward" in lines["bias_act"]
    assert "check passed on FakeGPU" in lines["upfirdn2d"]
