"""What training on a GPU hits first, checked on the CPU emulation of the fused kernels
(ops/cuda/cpu_check.cpp, which also checks every launch's grid against CUDA's limits):

- filtered_lrelu's backward reads the 2-bit signs its forward wrote: autograd keeps no more bytes
  than NVIDIA's kernel (its own arithmetic, tests/op_cases.py), and in half precision the gradient
  follows what the forward did, at 0 and at the clamp;
- empty batches, bfloat16, zero strides, float64 at StyleGAN3's filter sizes within a device's
  shared memory, and the fallback when no tile fits.
"""
from __future__ import annotations

import math
import subprocess
import sys
import warnings

import pytest
import torch

import ops
from ops import cuda_ops
from op_cases import FLR_CASES, each_op, nvidia_filtered_lrelu_kept_bytes, sg3_f64, sg3_layers, unpack_signs
from torch_utils.saved_tensors import SavedTensors

SQRT2 = math.sqrt(2)


def _kept_bytes(x, b, kw, device="cpu"):
    """Bytes autograd keeps for one filtered_lrelu call on the fused path (filters and bias excluded:
    resident anyway), and its output."""
    to = lambda t: None if t is None else t.to(device)
    kw = dict(kw, fu=to(kw["fu"]), fd=to(kw["fd"]))
    with SavedTensors(exclude=[t for t in (kw["fu"], kw["fd"], b) if t is not None]) as saved, ops.use_impl("cuda"):
        y = ops.filtered_lrelu(x, b=b, **kw)
    return saved.nbytes, y


# ---------------------------------------------------------------- the backward's memory
@pytest.mark.parametrize("name", ["sg3_t", "sg3_r"])
def test_backward_keeps_no_more_than_nvidia(emulated, name):
    """Every layer of StyleGAN3-T and -R, in float32 and float16, shapes only (meta tensors through
    the kernels' host code): at most NVIDIA's bytes (keeping x, as the backward once did, is more)."""
    for lname, shape, kw in sg3_layers(name):
        for dtype in (torch.float32, torch.float16):
            x = torch.empty((4, *shape[1:]), device="meta", dtype=dtype, requires_grad=True)
            b = torch.empty(shape[1], device="meta", dtype=dtype, requires_grad=True)
            ours, _ = _kept_bytes(x, b, kw, "meta")
            theirs = nvidia_filtered_lrelu_kept_bytes(x.shape, *(None if f is None else f.shape for f in
                                                                 (kw["fu"], kw["fd"])), kw["up"], kw["down"],
                                                      kw["padding"])
            assert 0 < ours <= theirs, (lname, dtype, ours, theirs)


def test_meta_measure_equals_a_real_run(emulated):
    """The meta-device count is what a real forward keeps: same storages, same bytes."""
    _, shape, kw = next(sg3_layers("sg3_r"))
    x = torch.randn((2, *shape[1:]), requires_grad=True)
    b = torch.randn(shape[1], requires_grad=True)
    real, _ = _kept_bytes(x, b, kw)
    meta, _ = _kept_bytes(x.detach().to("meta").requires_grad_(), b.detach().to("meta").requires_grad_(), kw, "meta")
    assert real == meta > 0


def test_no_signs_without_gradients(emulated):
    _, shape, kw = next(sg3_layers("sg3_t"))
    x = torch.randn(shape)
    assert _kept_bytes(x, None, kw)[0] == 0
    with torch.no_grad():
        assert _kept_bytes(x.requires_grad_(), None, kw)[0] == 0


# ---------------------------------------------------------------- the signs themselves
def _expected_codes(x, b, kw):
    """From the reference arithmetic in float64: 0 where the clamp cut or no output reads the sample,
    1 where the pre-activation is positive, 2 elsewhere; and where the float32 kernel may decide
    otherwise (within 1e-9 of a boundary, not on it)."""
    fu = kw["fu"]
    v = ops.upfirdn2d(x.double() + b.double()[:, None, None], fu, up=kw["up"], padding=kw["padding"],
                      gain=kw["up"] ** 2, flip_filter=kw.get("flip_filter", False), impl="ref")
    a = torch.where(v > 0, v, v * kw["slope"]) * kw["gain"]
    clamp = kw["clamp"]
    cut = (a.abs() > clamp) if clamp is not None else torch.zeros_like(a, dtype=torch.bool)
    codes = torch.where(cut, 0, torch.where(v > 0, 1, 2))
    (fdw, fdh), down = ops._util.filter_size(kw["fd"]), kw["down"]  # samples between the down filter's windows
    read = ((torch.arange(v.shape[2]) % down < fdh)[:, None] & (torch.arange(v.shape[3]) % down < fdw)[None, :])
    codes = torch.where(read, codes, 0)
    unsure = (v.abs() < 1e-9) & (v != 0)  # an exact 0 (no sample under the window) is 0 in float32 too
    if clamp is not None:
        unsure |= (a.abs() - clamp).abs() < 1e-9
    return codes, unsure


@pytest.mark.parametrize("i", range(len(FLR_CASES)))
def test_signs_are_what_the_forward_did(K, i):
    """Every byte written (the tensor starts as 0xFF, which no code is), each code equal to the
    float64 reference's decision, the same bytes with one tile or many (each byte has one writer)."""
    case = FLR_CASES[i]
    g = torch.Generator().manual_seed(100 + i)
    x = torch.randn(2, 3, *case["hw"], generator=g)
    b = torch.randn(3, generator=g) * 0.5
    kw = dict(fu=case["fu"], fd=case["fd"], up=case["up"], down=case["down"], padding=ops._util.parse_padding(case["pad"]),
              gain=SQRT2, slope=0.2, clamp=case["clamp"])
    got = []
    for max_smem in (1 << 30, 3000):
        geo = cuda_ops._FLGeometry(kw["up"], kw["down"], kw["padding"], kw["gain"], kw["slope"], False,
                                   tuple(x.shape[2:]), (0, 0), max_smem)
        launch = cuda_ops._fl_launch(geo, kw["fu"], kw["fd"], x, False)
        plan = cuda_ops._fl_plan(K, x.shape, launch, cuda_ops.SIGNS_WRITE, x, max_smem)
        signs = torch.full((2, 3, plan[5], plan[6]), 0xFF, dtype=torch.uint8)
        cuda_ops._fl_run(K, x, b, signs, cuda_ops.SIGNS_WRITE, launch, geo, kw["clamp"])
        got.append(unpack_signs(signs))
    assert torch.equal(got[0], got[1])
    codes = got[0]
    assert (codes != 3).all(), "a sign byte was never written"
    want, unsure = _expected_codes(x, b, dict(kw, fu=case["fu"] if case["fu"] is not None else None))
    fdw = 1 if case["fd"] is None else case["fd"].shape[-1]
    rows, width = codes.shape[2], (plan[4] - 1) * kw["down"] + fdw
    assert (codes[..., width:] == 0).all()  # no output reads past the last one's window
    want, unsure, codes = want[:, :, :rows, :width], unsure[:, :, :rows, :width], codes[..., :width]
    assert unsure.sum() <= 2
    assert torch.equal(codes[~unsure], want[~unsure].to(codes.dtype))


# ---------------------------------------------------------------- half precision at the boundaries
@pytest.mark.parametrize("bias,clamp,gain,want", [
    (-1 + 2 ** -20, None, SQRT2, SQRT2),  # x + b = 2**-20 > 0 in float32: slope 1, though fp16 rounds it to 0
    (2 ** -20, 1.0, 1.0, 0.0),            # x + b = 1 + 2**-20 > clamp: cut, though fp16 rounds it onto the clamp
    (0.0, 1.0, 1.0, 1.0),                 # exactly at the clamp: torch.clamp passes the gradient
])
def test_fp16_gradient_follows_the_forward(emulated, bias, clamp, gain, want):
    """x = 1 in float16, a float32 bias: the forward decides in float32, and so must the gradient."""
    x = torch.ones(1, 1, 3, 3, dtype=torch.float16, requires_grad=True)
    b = torch.tensor([bias], dtype=torch.float32, requires_grad=True)
    with ops.use_impl("cuda"):
        y = ops.filtered_lrelu(x, b=b, gain=gain, slope=0.2, clamp=clamp)
    torch.testing.assert_close(y.float(), torch.full_like(y, min(1 + bias, clamp or 9) * gain, dtype=torch.float32),
                               rtol=1e-3, atol=6e-8)  # 6e-8: float16's subnormal step
    dx, db = torch.autograd.grad(y.sum(), (x, b))
    assert torch.all(dx.float() == torch.tensor(want, dtype=torch.float16).float()), dx
    assert db.item() == pytest.approx(9 * float(torch.tensor(want, dtype=torch.float16)))


# ---------------------------------------------------------------- empty batches
@pytest.mark.parametrize("impl", ["ref", "fast", "cuda"])
def test_empty_batch_in_empty_batch_out(emulated, impl):
    """N = 0 through every implementation: empty outputs of the right shape, forward and backward
    (the emulation refuses a grid with no blocks, as a GPU does)."""
    x = torch.randn(0, 3, 8, 8, requires_grad=True)
    outs = each_op(x, impl)
    assert [tuple(o.shape) for o in outs] == [(0, 3, 8, 8), (0, 3, 16, 16), (0, 3, 7, 7)]
    grads = torch.autograd.grad(sum(o.sum() for o in outs), x)
    assert grads[0].shape == x.shape
    with torch.no_grad():  # and the inference paths (the compiled CPU kernel too)
        assert [tuple(o.shape) for o in each_op(x.detach(), impl)] == [tuple(o.shape) for o in outs]


# ---------------------------------------------------------------- bfloat16
@pytest.mark.parametrize("op", range(3))
def test_bf16_through_the_kernels(emulated, op):
    """bfloat16 in, float32 maths inside, bfloat16 out: within bfloat16's precision of the float32
    reference, forward and backward."""
    g = torch.Generator().manual_seed(7 + op)
    x = torch.randn(2, 4, 12, 12, generator=g).to(torch.bfloat16).float()  # the same values in both dtypes
    dy = None
    results = {}
    for impl, dtype in (("ref", torch.float32), ("cuda", torch.bfloat16)):
        xi = x.to(dtype).requires_grad_(True)
        y = each_op(xi, impl)[op]
        assert y.dtype == dtype
        dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)) if dy is None else dy
        gx, = torch.autograd.grad(y, xi, dy.to(dtype))
        results[impl] = (y.float(), gx.float())
    for got, want in zip(results["cuda"], results["ref"]):
        torch.testing.assert_close(got, want, rtol=2e-2, atol=3e-2)


# ---------------------------------------------------------------- strides
def test_bias_act_zero_stride_on_a_size_one_dimension(K):
    """A size-1 dimension may have stride 0 and still be dense; the kernel indexes the bias by it. In a
    child process: the division by zero this once was kills the process (SIGFPE)."""
    code = f"""
import sys, torch
sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
import cpu_kernels
from ops import cuda_ops
K = cpu_kernels.load()
x = torch.randn(4, 1, 3, 5).as_strided((4, 1, 3, 5), (15, 0, 5, 1))
b = torch.tensor([0.5])
y = cuda_ops.bias_act(K.bias_act, x, b, 1, "lrelu", 0.2, 1.0, None)
want = torch.nn.functional.leaky_relu(x + 0.5, 0.2)
assert torch.equal(y, want), (y - want).abs().max()
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


# ---------------------------------------------------------------- shared memory
@pytest.mark.parametrize("name", ["sg3_t", "sg3_r"])
@pytest.mark.parametrize("max_smem", [227 * 1024, 99 * 1024, 48 * 1024])  # H100, RTX 30/40 opt-in, default
def test_float64_at_sg3_sizes_fits_each_device(K, name, max_smem):
    """A 32 x 32 tile of StyleGAN3-T needs ~103 KB in float64, plus its sign codes: the plan shrinks
    the tile to the device's opt-in limit, forward and backward, and the results stay the reference's."""
    x, b, kw = sg3_f64(name)
    geo = cuda_ops._FLGeometry(kw["up"], kw["down"], tuple(kw["padding"]), kw["gain"], kw["slope"], False,
                               tuple(x.shape[2:]), (0, 0), max_smem)
    launch = cuda_ops._fl_launch(geo, kw["fu"], kw["fd"], x, False)
    full = cuda_ops._fl_plan(K, x.shape, launch, cuda_ops.SIGNS_WRITE, x, 1 << 30)
    plan = cuda_ops._fl_plan(K, x.shape, launch, cuda_ops.SIGNS_WRITE, x, max_smem)
    assert full[:2] == [32, 32] and plan and plan[2] <= max_smem
    assert (plan[:2] == [32, 32]) == (full[2] <= max_smem), (full, plan)
    if name == "sg3_t":
        assert 100 * 1024 < full[2] < 112 * 1024
    y = cuda_ops.filtered_lrelu(K, x, kw["fu"], kw["fd"], b, kw["up"], kw["down"], kw["padding"], kw["gain"],
                                kw["slope"], kw["clamp"], False, max_smem=max_smem)
    y_ref = ops.filtered_lrelu(x, b=b, impl="ref", **kw)
    torch.testing.assert_close(y, y_ref)
    dy = torch.randn_like(y)
    for got, want in zip(torch.autograd.grad(y, (x, b), dy), torch.autograd.grad(y_ref, (x, b), dy)):
        torch.testing.assert_close(got, want)


def test_no_tile_fits_falls_back_with_one_warning(emulated, monkeypatch):
    """A device with too little shared memory for the filters: the PyTorch path, one warning."""
    monkeypatch.setattr(cuda_ops, "max_shared_memory", lambda x: 2000)
    x, b, kw = sg3_f64("sg3_r")
    with warnings.catch_warnings(record=True) as caught, ops.use_impl("cuda"):
        warnings.simplefilter("always")
        y = ops.filtered_lrelu(x, b=b, **kw)
        y2 = ops.filtered_lrelu(x, b=b, **kw)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ops.OpsBuildWarning)]
    assert len(msgs) == 1 and "shared memory" in msgs[0], msgs
    y_ref = ops.filtered_lrelu(x, b=b, impl="ref", **kw)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(y2, y_ref)
    torch.autograd.grad(y.sum(), (x, b))
