"""Autograd over the fused kernels of `ops/cuda/` (the 'cuda' implementation of each op).

The kernels compute forward values only; gradients are expressed through the same kernels:

- bias_act: the gradient is kernel mode 1 (dy * f'(x + b) * gain, masked by the clamp), and the
  gradient of that is mode 1 again (w.r.t. dy) and mode 2 (w.r.t. x), so second order works.
- upfirdn2d: linear in x; its adjoint is upfirdn2d with up and down swapped, the filter flipped
  and the padding mirrored, applied by the same autograd Function, so every order works.
- filtered_lrelu: the fused kernel forward, which also writes what the activation did (2 bits per
  intermediate sample) when a gradient will be needed; the backward is the same kernel run on dy
  with up and down swapped and the activation read from those bits, and the gradient of that is
  the kernel once more, so every order works and autograd keeps 2 bits per sample, not x.

Each Function takes the kernel callable as an argument, so the test suite can run this exact
autograd over `ops/cuda/cpu_check.cpp`, a CPU build of the kernels' maths.
"""
from __future__ import annotations

import dataclasses

import torch

from . import _build
from ._activations import ACTIVATIONS
from ._impl import cuda_required
from ._util import filter_size, needs_grad, parse_padding, parse_scaling


def kernels(name: str, x: torch.Tensor):
    """The compiled module for op `name` usable on `x`, or None (CPU tensor, build failed, or the
    kernel failed its first-use check on x's device). A failure raises instead when 'cuda' was forced."""
    if not x.is_cuda:
        return None
    return _build.load_op(name, x.device, required=cuda_required())


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
SIGNS_NONE, SIGNS_WRITE, SIGNS_READ = 0, 1, 2  # FL_SIGNS_* of ops/cuda/filtered_lrelu.h


@dataclasses.dataclass(frozen=True)
class _FLGeometry:
    """What fixes filtered_lrelu's linear parts for one call: resampling, padding, gain, slope, the
    filters' orientation, the input and output sizes, and the shared memory a block may use."""
    up: int
    down: int
    padding: tuple[int, int, int, int]
    gain: float
    slope: float
    flip_filter: bool
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    max_smem: int


def _fl_launch(geo: _FLGeometry, fu, fd, x: torch.Tensor, transpose: bool) -> dict:
    """Kernel arguments that run, with the activation read from the signs, either the forward's
    linear map x -> y (its filters, padding and signs at offset 0) or its adjoint dy -> dx: up and
    down swapped, each filter reversed, the padding mirrored, and the sign tensor entered where the
    adjoint's intermediate sample 0 lies in the forward's."""
    fu, fd = _filter_or_identity(fu, x), _filter_or_identity(fd, x)
    (fuw, fuh), (fdw, fdh) = filter_size(fu), filter_size(fd)
    (ih, iw), (oh, ow) = geo.in_hw, geo.out_hw
    px0, px1, py0, py1 = geo.padding
    if not transpose:
        return dict(fu=_taps(fu, x, geo.flip_filter, geo.up ** 2), fd=_taps(fd, x, geo.flip_filter, 1),
                    up=geo.up, down=geo.down, padding=geo.padding, sign_oy=0, sign_ox=0)
    up, down = geo.up, geo.down
    padding = (fdw - 1 + fuw - 1 - px0, iw * up - ow * down + px0 - (up - 1),
               fdh - 1 + fuh - 1 - py0, ih * up - oh * down + py0 - (up - 1))
    return dict(fu=_taps(fd, x, not geo.flip_filter, 1), fd=_taps(fu, x, not geo.flip_filter, up ** 2),
                up=down, down=up, padding=padding, sign_oy=py0 - (fuh - 1), sign_ox=px0 - (fuw - 1))


def _fl_run(K, x, b, signs, mode, launch, geo: _FLGeometry, clamp=None):
    return K.filtered_lrelu(x, b, launch["fu"], launch["fd"], signs, launch["up"], launch["down"], *launch["padding"],
                            geo.gain, geo.slope, -1.0 if clamp is None else clamp, mode, launch["sign_oy"],
                            launch["sign_ox"], geo.max_smem)


def _fl_plan(K, shape, launch, mode, x, max_smem) -> list[int]:
    """K's plan for a launch ([tile h, tile w, smem bytes, out h, out w, sign rows, sign bytes/row]),
    [] when no tile fits in max_smem."""
    return K.filtered_lrelu_plan(list(shape), list(launch["fu"].shape), list(launch["fd"].shape), launch["up"],
                                 launch["down"], *launch["padding"], mode, _acc_dtype(x).itemsize, max_smem)


class _FilteredLReLU(torch.autograd.Function):
    """The fused forward; with `write_signs` it leaves the activation's 2-bit codes for the backward,
    which then needs neither x nor the pre-activation (what NVIDIA's kernel keeps, too)."""

    @staticmethod
    def forward(ctx, x, fu, fd, b, K, geo, clamp, sign_shape):
        e = x.new_empty([0], dtype=_acc_dtype(x))
        write = sign_shape is not None
        signs = x.new_empty(sign_shape, dtype=torch.uint8) if write else x.new_empty([0], dtype=torch.uint8)
        y = _fl_run(K, x, b.to(_acc_dtype(x)).contiguous() if b is not None else e, signs,
                    SIGNS_WRITE if write else SIGNS_NONE, _fl_launch(geo, fu, fd, x, False), geo, clamp)
        ctx.save_for_backward(fu, fd, signs if write else None)
        ctx.K, ctx.geo, ctx.b_dtype = K, geo, None if b is None else b.dtype
        return y

    @staticmethod
    def backward(ctx, dy):
        fu, fd, signs = ctx.saved_tensors
        dx = _FilteredLReLUSigned.apply(dy.contiguous(), signs, fu, fd, ctx.K, ctx.geo, True)
        db = _sum_except(dx, 1).to(ctx.b_dtype) if ctx.needs_input_grad[3] else None
        return dx, None, None, db, None, None, None, None


class _FilteredLReLUSigned(torch.autograd.Function):
    """filtered_lrelu's linear map at fixed signs: dy -> dx (transpose), or x -> y (its adjoint). Each
    is the other's gradient, so gradients of every order through dy come from the same kernel; the
    signs do not move with x (the activation is piecewise linear)."""

    @staticmethod
    def forward(ctx, t, signs, fu, fd, K, geo, transpose):
        ctx.save_for_backward(signs, fu, fd)
        ctx.K, ctx.geo, ctx.transpose = K, geo, transpose
        out = _fl_run(K, t, t.new_empty([0], dtype=_acc_dtype(t)), signs, SIGNS_READ,
                      _fl_launch(geo, fu, fd, t, transpose), geo)
        assert tuple(out.shape[2:]) == (geo.in_hw if transpose else geo.out_hw)
        return out

    @staticmethod
    def backward(ctx, grad):
        signs, fu, fd = ctx.saved_tensors
        g = _FilteredLReLUSigned.apply(grad.contiguous(), signs, fu, fd, ctx.K, ctx.geo, not ctx.transpose)
        return g, None, None, None, None, None, None


def max_shared_memory(x: torch.Tensor) -> int:
    """Shared memory one block may use on x's device (opt-in maximum on the GPU)."""
    if not x.is_cuda:
        return 1 << 30  # the CPU emulation has no limit worth modelling
    props = torch.cuda.get_device_properties(x.device)
    return int(getattr(props, "shared_memory_per_block_optin", 0) or props.shared_memory_per_block)


def filtered_lrelu(K, x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, max_smem=None):
    """The fused op through kernel module K, or None when no tile of the kernel fits in the device's
    shared memory for these filters and dtype (forward, or the backward when a gradient is needed):
    the caller then takes the PyTorch path."""
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    assert isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1
    if b is not None:
        assert isinstance(b, torch.Tensor) and b.shape == (x.shape[1],)
    x = x.contiguous()
    max_smem = max_smem or max_shared_memory(x)
    geo = _FLGeometry(up, down, parse_padding(padding), float(gain), float(slope), bool(flip_filter),
                      tuple(x.shape[2:]), (0, 0), max_smem)
    write = needs_grad(x, b)
    plan = _fl_plan(K, x.shape, _fl_launch(geo, fu, fd, x, False), SIGNS_WRITE if write else SIGNS_NONE, x, max_smem)
    if not plan:
        return None
    geo = dataclasses.replace(geo, out_hw=(plan[3], plan[4]))
    if write and not _fl_plan(K, (*x.shape[:2], *geo.out_hw), _fl_launch(geo, fu, fd, x, True), SIGNS_READ, x,
                              max_smem):
        return None
    sign_shape = (*x.shape[:2], plan[5], plan[6]) if write else None
    return _FilteredLReLU.apply(x, fu, fd, b, K, geo, None if clamp is None else float(clamp), sign_shape)
