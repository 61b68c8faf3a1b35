"""Autograd over the fused kernels of `ops/cuda/` (the 'cuda' implementation of each op).

The kernels compute forward values only; gradients are expressed through the same kernels:

- bias_act: the gradient is kernel mode 1 (dy * f'(x + b) * gain, masked by the clamp), and the
  gradient of that is mode 1 again (w.r.t. dy) and mode 2 (w.r.t. x), so second order works.
- upfirdn2d: linear in x; its adjoint is upfirdn2d with up and down swapped, the filter flipped
  and the padding mirrored, applied by the same autograd Function, so every order works.
- filtered_lrelu: the fused kernel forward; backward recomputes the pre-activation with the
  upfirdn2d kernel and pulls dy back through the two adjoint resamplings and the lrelu slope.

Each Function takes the kernel callable as an argument, so the test suite can run this exact
autograd over `ops/cuda/cpu_check.cpp`, a CPU build of the kernels' maths.
"""
from __future__ import annotations

import torch

from . import _build
from ._activations import ACTIVATIONS
from ._impl import cuda_required
from ._util import filter_size, parse_padding, parse_scaling


def kernels(name: str, x: torch.Tensor):
    """The compiled module for op `name` usable on `x`, or None (CPU tensor, or build failed).
    A build failure raises instead when 'cuda' was forced."""
    if not x.is_cuda:
        return None
    return _build.load_op(name, required=cuda_required())


def _acc_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _empty(x: torch.Tensor) -> torch.Tensor:
    return x.new_empty([0])


def _filter_or_identity(f: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    return torch.ones([1, 1], dtype=torch.float32, device=x.device) if f is None else f


def _taps(f: torch.Tensor, x: torch.Tensor, flip_filter: bool, gain: float) -> torch.Tensor:
    """Correlation taps in x's accumulation dtype (the kernels correlate): flipped unless
    flip_filter, scaled so the whole filter (both passes, if separable) gains `gain`."""
    w = f if flip_filter else f.flip(list(range(f.ndim)))
    return (w * (gain ** (w.ndim / 2))).to(_acc_dtype(x)).contiguous()


# ---------------------------------------------------------------- bias_act
def _dense_like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`t` with exactly x's strides, which the kernel needs for dy and dy2."""
    if t.stride() == x.stride():
        return t
    return torch.empty_like(x).copy_(t)


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, kern, spec):
        e = _empty(x)
        y = kern(x, b if b is not None else e, e, e, 0, *spec)
        ctx.save_for_backward(x, b)
        ctx.kern, ctx.spec = kern, spec
        return y

    @staticmethod
    def backward(ctx, dy):
        x, b = ctx.saved_tensors
        dx = _BiasActGrad.apply(dy, x, b, ctx.kern, ctx.spec)
        db = _sum_except(dx, ctx.spec[0]).to(b.dtype) if b is not None and ctx.needs_input_grad[1] else None
        return dx, db, None, None


class _BiasActGrad(torch.autograd.Function):
    """dx = dy * f'(x + b) * gain (inside the clamp); differentiable in dy, x and b."""

    @staticmethod
    def forward(ctx, dy, x, b, kern, spec):
        e = _empty(x)
        dy = _dense_like(dy, x)
        ctx.save_for_backward(dy, x, b)
        ctx.kern, ctx.spec = kern, spec
        return kern(x, b if b is not None else e, dy, e, 1, *spec)

    @staticmethod
    def backward(ctx, ddx):
        dy, x, b = ctx.saved_tensors
        ddx = _dense_like(ddx, x)
        d_dy = _BiasActGrad.apply(ddx, x, b, ctx.kern, ctx.spec) if ctx.needs_input_grad[0] else None
        d_x = d_b = None
        if ctx.needs_input_grad[1] or (b is not None and ctx.needs_input_grad[2]):
            # Third order is not needed by any loss; this term is computed without a graph.
            d_x = ctx.kern(x, b if b is not None else _empty(x), ddx, dy, 2, *ctx.spec)
            if b is not None and ctx.needs_input_grad[2]:
                d_b = _sum_except(d_x, ctx.spec[0]).to(b.dtype)
        return d_dy, d_x, d_b, None, None


def _sum_except(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Bias gradient: summed in the accumulation dtype, never in fp16."""
    return t.sum([i for i in range(t.ndim) if i != dim], dtype=_acc_dtype(t))


def bias_act(kern, x, b, dim, act, alpha, gain, clamp):
    """Fused bias_act; alpha and gain already resolved to numbers by the caller."""
    if not (x.is_contiguous() or (x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last))):
        x = x.contiguous()  # the kernel takes any dense layout; these are the ones that occur
    if b is not None:
        b = b.to(_acc_dtype(x)).contiguous()
    spec = (dim, ACTIVATIONS[act].cuda_id, float(alpha), float(gain), -1.0 if clamp is None else float(clamp))
    return _BiasAct.apply(x, b, kern, spec)


# ---------------------------------------------------------------- upfirdn2d
def _run_upfirdn2d(kern, x, f, up, down, padding, flip_filter, gain):
    """One forward evaluation: filter flipped/scaled here, a separable filter as two passes."""
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding
    w = _taps(f, x, flip_filter, gain)
    if w.ndim == 2:
        return kern(x, w, upx, upy, downx, downy, px0, px1, py0, py1)
    x = kern(x, w[None, :].contiguous(), upx, 1, downx, 1, px0, px1, 0, 0)
    return kern(x, w[:, None].contiguous(), 1, upy, 1, downy, 0, 0, py0, py1)


def _adjoint_padding(f, in_hw, out_hw, up, down, padding):
    """Padding that makes upfirdn2d(up=down, down=up, flipped f) the adjoint of the forward op."""
    fw, fh = filter_size(f)
    (ih, iw), (oh, ow) = in_hw, out_hw
    (upx, upy), (downx, downy), (px0, _, py0, _) = up, down, padding
    return (fw - px0 - 1, iw * upx - ow * downx + px0 - upx + 1,
            fh - py0 - 1, ih * upy - oh * downy + py0 - upy + 1)


class _UpFirDn2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, f, kern, up, down, padding, flip_filter, gain):
        y = _run_upfirdn2d(kern, x, f, up, down, padding, flip_filter, gain)
        ctx.save_for_backward(f)
        ctx.args = (kern, up, down, padding, flip_filter, gain, tuple(x.shape[2:]), tuple(y.shape[2:]))
        return y

    @staticmethod
    def backward(ctx, dy):
        f, = ctx.saved_tensors
        kern, up, down, padding, flip_filter, gain, in_hw, out_hw = ctx.args
        p = _adjoint_padding(f, in_hw, out_hw, up, down, padding)
        dx = _UpFirDn2d.apply(dy.contiguous(), f, kern, down, up, p, not flip_filter, gain)
        assert tuple(dx.shape[2:]) == in_hw
        return dx, None, None, None, None, None, None, None


def upfirdn2d(kern, x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    f = _filter_or_identity(f, x)
    assert isinstance(f, torch.Tensor) and f.ndim in (1, 2)
    return _UpFirDn2d.apply(x.contiguous(), f, kern, parse_scaling(up), parse_scaling(down), parse_padding(padding),
                            bool(flip_filter), float(gain))


# ---------------------------------------------------------------- filtered_lrelu
class _FilteredLReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, fu, fd, b, kern, kern_up, up, down, padding, gain, slope, clamp, flip_filter, max_smem):
        px0, px1, py0, py1 = padding
        e = x.new_empty([0], dtype=_acc_dtype(x))
        y = kern(x, b.to(_acc_dtype(x)).contiguous() if b is not None else e,
                 _taps(_filter_or_identity(fu, x), x, flip_filter, up ** 2),
                 _taps(_filter_or_identity(fd, x), x, flip_filter, 1), up, down, px0, px1, py0, py1, gain, slope,
                 -1.0 if clamp is None else clamp, max_smem)
        ctx.save_for_backward(x, fu, fd, b)
        ctx.args = (kern_up, up, down, padding, gain, slope, clamp, flip_filter)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, fu, fd, b = ctx.saved_tensors
        kern_up, up, down, padding, gain, slope, clamp, flip_filter = ctx.args
        fu, fd = _filter_or_identity(fu, x), _filter_or_identity(fd, x)
        # The pre-activation v, recomputed rather than stored (it is up**2 times the size of x).
        xb = x if b is None else x + b.to(x.dtype).reshape(1, -1, 1, 1)
        v = _run_upfirdn2d(kern_up, xb.contiguous(), fu, (up, up), (1, 1), padding, flip_filter, up ** 2)
        # dy -> d(activation output) -> d(v) -> dx, each through a differentiable adjoint.
        dm = _UpFirDn2d.apply(dy.contiguous(), fd, kern_up, (down, down), (1, 1),
                              _adjoint_padding(fd, v.shape[2:], dy.shape[2:], (1, 1), (down, down), (0, 0, 0, 0)),
                              not flip_filter, 1.0)
        dv = torch.where(v > 0, dm * gain, dm * (gain * slope))  # lrelu' * gain, in dm's dtype
        if clamp is not None:
            a = torch.where(v > 0, v, v * slope) * gain
            dv = dv * ((a >= -clamp) & (a <= clamp)).to(dv.dtype)
        dx = _UpFirDn2d.apply(dv.contiguous(), fu, kern_up, (1, 1), (up, up),
                              _adjoint_padding(fu, x.shape[2:], v.shape[2:], (up, up), (1, 1), padding),
                              not flip_filter, float(up ** 2))
        db = _sum_except(dx, 1).to(b.dtype) if b is not None and ctx.needs_input_grad[3] else None
        return dx, None, None, db, *([None] * 10)


def max_shared_memory(x: torch.Tensor) -> int:
    """Shared memory one block may use on x's device (opt-in maximum on the GPU)."""
    if not x.is_cuda:
        return 1 << 30  # the CPU emulation has no limit worth modelling
    props = torch.cuda.get_device_properties(x.device)
    return int(getattr(props, "shared_memory_per_block_optin", 0) or props.shared_memory_per_block)


def filtered_lrelu(kern, kern_up, x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, max_smem=None):
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    assert isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1
    if b is not None:
        assert isinstance(b, torch.Tensor) and b.shape == (x.shape[1],)
    return _FilteredLReLU.apply(x.contiguous(), fu, fd, b, kern, kern_up, up, down, parse_padding(padding),
                                float(gain), float(slope), None if clamp is None else float(clamp),
                                bool(flip_filter), max_smem or max_shared_memory(x))
