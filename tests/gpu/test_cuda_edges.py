"""What a GPU hits first, on a GPU: empty batches, bfloat16, float64 at StyleGAN3's sizes, tensors of
more than 2^31 elements, a non-default stream, the first-use check, the signs the backward reads,
and a build whose TORCH_CUDA_ARCH_LIST misses this GPU.

    python3 -m pytest -q tests/gpu                 (needs a CUDA build of torch, nvcc and a GPU)
    tests/gpu/sanitize.sh                          (the same under compute-sanitizer)

Tests marked `small` are the ones racecheck and synccheck run (tests/gpu/sanitize.sh).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

import ops
from ops import _build, _selfcheck, cuda_ops
from op_cases import each_op, sg3_f64, sg3_layers, unpack_signs
from torch_utils.saved_tensors import SavedTensors

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEV = torch.device("cuda")
SANITIZING = os.environ.get("STYLEGAN_GPU_SANITIZE") == "1"  # set by sanitize.sh: skip the huge cases


def _cpu(t):
    return t.detach().float().cpu()


@pytest.mark.small
def test_every_kernel_passes_its_first_use_check():
    for name in ops.CUDA_OPS:
        K = cuda_ops.kernels(name, torch.zeros(1, device=DEV))
        assert K is not None, f"{name} unavailable (see the warning)"
        verdict = _build.verify(name, K, DEV)
        assert verdict.ok, verdict
    assert all(v.ok for name in ops.CUDA_OPS for v in _selfcheck.stored_verdicts(_build._folders[name]))


@pytest.mark.small
def test_empty_batch():
    x = torch.randn(0, 3, 8, 8, device=DEV, requires_grad=True)
    with ops.use_impl("cuda"):
        outs = each_op(x, "cuda")
    assert [tuple(o.shape) for o in outs] == [(0, 3, 8, 8), (0, 3, 16, 16), (0, 3, 7, 7)]
    assert torch.autograd.grad(sum(o.sum() for o in outs), x)[0].shape == x.shape
    torch.cuda.synchronize()


@pytest.mark.small
@pytest.mark.parametrize("op", range(3))
def test_bf16_througheach_op(op):
    g = torch.Generator().manual_seed(7 + op)
    x = torch.randn(2, 4, 12, 12, generator=g).to(torch.bfloat16).float()
    xr = x.clone().requires_grad_(True)
    yr = each_op(xr, "ref")[op]
    dy = torch.randn(yr.shape, generator=g)
    gr, = torch.autograd.grad(yr, xr, dy)
    xc = x.to(DEV, torch.bfloat16).requires_grad_(True)
    yc = each_op(xc, "cuda")[op]
    assert yc.dtype == torch.bfloat16
    gc, = torch.autograd.grad(yc, xc, dy.to(DEV, torch.bfloat16))
    torch.testing.assert_close(_cpu(yc), yr.detach(), rtol=2e-2, atol=3e-2)
    torch.testing.assert_close(_cpu(gc), gr, rtol=2e-2, atol=3e-2)


@pytest.mark.parametrize("name", ["sg3_t", "sg3_r"])
def test_float64_filtered_lrelu_at_sg3_sizes(name):
    """~103 KB of shared memory per block at a 32 x 32 tile: within this GPU's opt-in limit (tile
    shrunk if need be), forward and backward equal to the CPU reference."""
    x, b, kw = sg3_f64(name)
    y_ref = ops.filtered_lrelu(x, b=b, impl="ref", **kw)
    dy = torch.randn_like(y_ref)
    want = torch.autograd.grad(y_ref, (x, b), dy)
    dev = lambda t: None if t is None else t.to(DEV)
    xc, bc = x.detach().to(DEV).requires_grad_(True), b.detach().to(DEV).requires_grad_(True)
    y = ops.filtered_lrelu(xc, b=bc, impl="cuda", **dict(kw, fu=dev(kw["fu"]), fd=dev(kw["fd"])))
    got = torch.autograd.grad(y, (xc, bc), dy.to(DEV))
    torch.testing.assert_close(y.cpu(), y_ref.detach())
    for g, w in zip(got, want):
        torch.testing.assert_close(g.cpu(), w)


def _free_bytes():
    free, _ = torch.cuda.mem_get_info(DEV)
    return free


@pytest.mark.skipif(SANITIZING, reason="minutes under compute-sanitizer")
@pytest.mark.parametrize("op", ["bias_act", "upfirdn2d"])
def test_more_than_2_31_elements_in_fp16(op):
    """Index arithmetic in int64: the last planes of a [32770, 1, 256, 256] fp16 tensor (2^31 + 2^17
    elements) against the reference on those planes alone."""
    n = 32770
    if _free_bytes() < 3 * n * 256 * 256 * 2 + (1 << 30):
        pytest.skip("not enough GPU memory")
    x = torch.empty(n, 1, 256, 256, device=DEV, dtype=torch.float16)
    x[:-3].fill_(0.5)
    tail = torch.randn(3, 1, 256, 256, generator=torch.Generator().manual_seed(1))
    x[-3:] = tail.to(DEV, torch.float16)
    f = ops.setup_filter([1, 3, 3, 1])
    if op == "bias_act":
        run = lambda t, impl: ops.bias_act(t, torch.full([1], 0.25, device=t.device), act="lrelu", impl=impl)
    else:
        run = lambda t, impl: ops.upfirdn2d(t, f.to(t.device), padding=1, impl=impl)
    y = run(x, "cuda")
    assert y.numel() > 2 ** 31
    want = run(tail.to(torch.float16).float(), "ref")
    torch.testing.assert_close(_cpu(y[-3:]), want, rtol=3e-3, atol=3e-3)
    torch.testing.assert_close(_cpu(y[0]), run(torch.full((1, 1, 256, 256), 0.5), "ref")[0], rtol=3e-3, atol=3e-3)


@pytest.mark.small
def test_non_default_stream():
    """The kernels run on the caller's current stream, ordered with the work around them."""
    _, shape, kw = next(sg3_layers("sg3_t"))
    x = torch.randn((2, 4, *shape[2:]), generator=torch.Generator().manual_seed(3))
    b = torch.randn(4)
    want = ops.filtered_lrelu(x, b=b, impl="ref", **kw)
    dev = lambda t: None if t is None else t.to(DEV)
    side = torch.cuda.Stream(DEV)
    side.wait_stream(torch.cuda.current_stream(DEV))
    with torch.cuda.stream(side):
        xc = x.to(DEV, non_blocking=True) * 1  # produced on the side stream
        y = ops.filtered_lrelu(xc, b=b.to(DEV), impl="cuda", **dict(kw, fu=dev(kw["fu"]), fd=dev(kw["fd"])))
        y2 = ops.bias_act(y, act="lrelu", impl="cuda")
        y3 = ops.upfirdn2d(y2, ops.setup_filter([1, 3, 3, 1], device=DEV), up=2, padding=[2, 1, 2, 1], gain=4,
                           impl="cuda")
    torch.cuda.current_stream(DEV).wait_stream(side)
    want2 = ops.bias_act(want, act="lrelu", impl="ref")
    want3 = ops.upfirdn2d(want2, ops.setup_filter([1, 3, 3, 1]), up=2, padding=[2, 1, 2, 1], gain=4, impl="ref")
    torch.testing.assert_close(_cpu(y3), want3, rtol=1e-5, atol=3e-5)


@pytest.mark.small
def test_signs_written_once_each_and_kept_as_on_the_cpu():
    """Every sign byte written by the GPU's parallel tiles (the tensor starts as 0xFF, which no code
    is), and autograd keeps on the GPU the bytes the meta measurement gives."""
    _, shape, kw = next(sg3_layers("sg3_r"))
    x = torch.randn((2, 8, *shape[2:]), device=DEV)
    for max_smem in (None, 3000):
        geo = cuda_ops._FLGeometry(kw["up"], kw["down"], tuple(kw["padding"]), kw["gain"], kw["slope"], False,
                                   tuple(x.shape[2:]), (0, 0), max_smem or cuda_ops.max_shared_memory(x))
        K = cuda_ops.kernels("filtered_lrelu", x)
        launch = cuda_ops._fl_launch(geo, kw["fu"].to(DEV), kw["fd"].to(DEV), x, False)
        plan = cuda_ops._fl_plan(K, x.shape, launch, cuda_ops.SIGNS_WRITE, x, geo.max_smem)
        signs = torch.full((*x.shape[:2], plan[5], plan[6]), 0xFF, dtype=torch.uint8, device=DEV)
        cuda_ops._fl_run(K, x, x.new_empty([0]), signs, cuda_ops.SIGNS_WRITE, launch, geo, kw["clamp"])
        assert (unpack_signs(signs.cpu()) != 3).all()
    b = torch.randn(8, device=DEV, requires_grad=True)
    kw_dev = dict(kw, fu=kw["fu"].to(DEV), fd=kw["fd"].to(DEV))
    with SavedTensors(exclude=[kw_dev["fu"], kw_dev["fd"], b]) as saved, ops.use_impl("cuda"):
        ops.filtered_lrelu(x.requires_grad_(True), b=b, **kw_dev)
    assert saved.nbytes == x.shape[0] * x.shape[1] * plan[5] * plan[6]  # the signs, nothing else


BUILD_80 = """
import json, os, sys, torch
sys.path.insert(0, {repo!r})
from ops import _build
r = _build.build("bias_act")
x = torch.randn(4, 3, 5, 5, device="cuda")
import ops
y = ops.bias_act(x, torch.ones(3, device="cuda"), act="lrelu", impl="cuda")
ok = torch.allclose(y.cpu(), ops.bias_act(x.cpu(), torch.ones(3), act="lrelu", impl="ref"), atol=1e-6)
print(json.dumps(dict(status=r.status, reason=r.reason, check=str(r.check), ok=ok,
                      archs=_build._marker(r.path)["archs"] if r.path else None)))
"""


def test_build_with_an_arch_list_that_misses_this_gpu(tmp_path):
    """TORCH_CUDA_ARCH_LIST=8.0 on a newer GPU (as Docker images set it): the build adds this GPU's
    architecture, says so, and the kernel runs (in a child process, with a fresh cache)."""
    major, minor = torch.cuda.get_device_capability(DEV)
    covered = major == 8  # sm_80 machine code runs on every 8.x GPU
    if (major, minor) == (8, 0):
        pytest.skip("this GPU is sm_80: the list is its own")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TORCH_CUDA_ARCH_LIST="8.0", STYLEGAN_OPS_CACHE=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", BUILD_80.format(repo=repo)], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["status"] == "built" and out["ok"], out
    assert out["archs"] == (["8.0"] if covered else ["8.0", f"{major}.{minor}"]), out
    assert out["check"].startswith("passed"), out
    assert ("does not cover the visible GPU" in r.stderr) != covered
