"""Filtered leaky ReLU (StyleGAN3): bias, upsample, leaky ReLU with gain and clamp, downsample.

Upsampling before the nonlinearity and low-pass filtering after it keeps the aliasing that a
pointwise nonlinearity creates below the output's Nyquist frequency. Output width:

    (W * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
"""
from __future__ import annotations

import math
import warnings

import torch

from . import _cpu, _selfcheck, cuda_ops
from . import upfirdn2d_fast as U
from ._build import OpsBuildWarning
from ._dispatch import choose_impl
from ._util import filter_size, needs_grad, parse_padding
from .bias_act import bias_act
from .upfirdn2d import setup_filter, upfirdn2d


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                   b: torch.Tensor | None = None, up: int = 1, down: int = 1, padding=0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None,
                   flip_filter: bool = False, impl: str = "auto") -> torch.Tensor:
    """Public entry point; `impl` selects 'ref' | 'fast' | 'cuda' | 'auto'."""
    impl = choose_impl(impl, x, "filtered_lrelu")
    if impl == "cuda":
        y = cuda_ops.filtered_lrelu(cuda_ops.kernels("filtered_lrelu", x), x, fu, fd, b, up, down, padding, gain,
                                    slope, clamp, flip_filter)
        if y is not None:
            return y
        _warn_no_tile(x, fu, fd)
        impl = "fast"
    if impl == "fast":
        return _filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
    return _filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl=impl)


_no_tile_warned: set = set()


def _warn_no_tile(x, fu, fd) -> None:
    """Once per filter shapes and dtype: the fused kernel has no tile that fits this device's shared
    memory (large 2-D filters in float64), so the PyTorch path runs."""
    key = (x.dtype, None if fu is None else tuple(fu.shape), None if fd is None else tuple(fd.shape), x.device)
    if key not in _no_tile_warned:
        _no_tile_warned.add(key)
        warnings.warn(f"stylegan: filtered_lrelu's CUDA kernel has no tile that fits {x.device}'s shared memory "
                      f"for {x.dtype} with filters {key[1]} / {key[2]}; using the PyTorch path for these calls",
                      OpsBuildWarning, stacklevel=3)


def _filtered_lrelu_ref(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2,
                        clamp=None, flip_filter=False, impl="ref"):
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    assert isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1
    n, c, h, w = x.shape
    fu_w, fu_h = filter_size(fu)
    fd_w, fd_h = filter_size(fd)
    if b is not None:
        assert isinstance(b, torch.Tensor) and b.shape == (c,)
    px0, px1, py0, py1 = parse_padding(padding)
    assert gain == float(gain) and gain > 0 and slope == float(slope) and slope >= 0
    assert clamp is None or (clamp == float(clamp) and clamp >= 0)

    out_w = (w * up + (px0 + px1) - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (h * up + (py0 + py1) - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    assert out_w >= 1 and out_h >= 1

    x = bias_act(x, b, impl=impl)
    x = upfirdn2d(x, fu, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter, impl=impl)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp, impl=impl)
    x = upfirdn2d(x, fd, down=down, flip_filter=flip_filter, impl=impl)
    assert x.shape == (n, c, out_h, out_w)
    return x


def _cpu_kernel_applies(x, fu, fd, b, up, down, gain) -> bool:
    """The compiled CPU kernel covers float32 inference with a separable up filter and down | up."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.numel() == 0 or not _cpu.enabled():
        return False
    if needs_grad(x, b):
        return False
    fd_ok = fd is None or fd.ndim == 1 or (fd.ndim == 2 and fd.shape[0] == fd.shape[1])
    return (fu is None or fu.ndim == 1) and fd_ok and up % down == 0 and gain > 0


def _filtered_lrelu_cpu(kernel, x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    """The kernel correlates with flipped filters; the up filter carries up (per axis) and the gain."""
    one = torch.ones([1], dtype=torch.float32)
    fu = one if fu is None else fu.to(torch.float32)
    fd = one if fd is None else fd.to(torch.float32)
    if not flip_filter:
        fu, fd = fu.flip(0), fd.flip(list(range(fd.ndim)))
    fu = fu * (up * math.sqrt(gain))  # lrelu(g u) = g lrelu(u) for g > 0
    bias = torch.empty([0]) if b is None else b.detach().to(torch.float32)
    px0, px1, py0, py1 = parse_padding(padding)
    return kernel.filtered_lrelu(x, bias, fu.contiguous(), fd.contiguous(), up, down, px0, px1, py0, py1,
                                 float(slope), -1.0 if clamp is None else float(clamp), 0)


def _filtered_lrelu_fast(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
    """Same maths as the reference: polyphase up, one fused elementwise pass, strided down."""
    n, c, h, w = x.shape
    if b is not None:
        assert isinstance(b, torch.Tensor) and b.shape == (c,)
    if _cpu_kernel_applies(x, fu, fd, b, up, down, gain):
        kernel = _cpu.load("filtered_lrelu")
        if kernel is not None:
            return _filtered_lrelu_cpu(kernel, x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    # lrelu(g * u) = g * lrelu(u) for g > 0: the gain rides on the (linear) upsampling for free.
    # The filter is float32, so float64 inputs (gradchecks) keep the reference's order instead.
    fold = gain > 0 and x.dtype != torch.float64
    x = U.upfirdn2d(x, fu, up=up, padding=parse_padding(padding), gain=up ** 2 * (gain if fold else 1),
                    flip_filter=flip_filter)
    # In-place is safe when nothing will differentiate through x (a fresh tensor here).
    inplace = not needs_grad(x)
    lrelu = torch.nn.functional.leaky_relu_ if inplace else torch.nn.functional.leaky_relu
    x = lrelu(x, float(slope))
    if not fold:
        x = x.mul_(gain) if inplace else x * gain
    if clamp is not None:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return U.upfirdn2d(x, fd, down=down, flip_filter=flip_filter)


@_selfcheck.register("filtered_lrelu")
def _self_check(K, device: torch.device) -> list:
    """The fused kernel against the reference: a StyleGAN3 layer (12-tap filters, up and down by 2,
    a clamp that cuts), one with a 2-D down filter (StyleGAN3-R), and ToRGB (bias and clamp alone);
    forward, gradients to x and b, and second order in float32."""
    f12 = setup_filter([1, 2, 4, 7, 9, 10, 10, 9, 7, 4, 2, 1])
    radial = setup_filter([1, 3, 4, 4, 3, 1], separable=False)
    cases = (("T", f12, f12, dict(up=2, down=2, padding=[9, 8, 9, 8], gain=math.sqrt(2), slope=0.2, clamp=0.5)),
             ("R", f12, radial, dict(up=2, down=2, padding=[8, 7, 8, 7], gain=math.sqrt(2), slope=0.2, clamp=None)),
             ("ToRGB", None, None, dict(up=1, down=1, padding=0, gain=1.0, slope=1.0, clamp=0.8)))
    out = []
    for dtype in _selfcheck.DTYPES:
        for what, fu, fd, kw in cases:
            x, b = _check_inputs(fu, kw, dtype)
            out += _selfcheck.against_reference(
                f"filtered_lrelu {what}", lambda x, b: _fused_or_raise(K, x, fu, fd, b, kw, device),
                lambda x, b: _filtered_lrelu_ref(x, fu, fd, b, impl="ref", **kw), [x, b], device, dtype,
                second_order=dtype == torch.float32)
    return out


def _check_inputs(fu, kw, dtype, margin=1e-5):
    """x [2, 3, 10, 10] and b [3] whose pre-activations, once rounded to dtype, keep `margin` (relative)
    from 0 and from the clamp, where float32 and float64 may decide differently: the first seed that
    does (exact zeros, where no sample falls under the filter, are exact in every precision)."""
    for seed in range(100):
        x, b = _selfcheck.randn(2, 3, 10, 10, seed=10 + seed), _selfcheck.randn(3, seed=200 + seed) * 0.2
        xr, br = x.to(dtype).double(), b.to(dtype).double()
        v = upfirdn2d(xr + br[:, None, None], fu, up=kw["up"], padding=kw["padding"], gain=kw["up"] ** 2, impl="ref")
        a = torch.where(v > 0, v, v * kw["slope"]) * kw["gain"]
        tol = margin * float(v.abs().max())
        near = ((v.abs() < tol) & (v != 0)).any()
        if kw["clamp"] is not None:
            near |= ((a.abs() - kw["clamp"]).abs() < tol).any()
        if not near:
            return x, b
    raise AssertionError("no inputs clear of the kinks")


def _fused_or_raise(K, x, fu, fd, b, kw, device):
    y = cuda_ops.filtered_lrelu(K, x, None if fu is None else fu.to(device), None if fd is None else fd.to(device), b,
                                flip_filter=False, **kw)
    if y is None:
        raise RuntimeError("no tile fits in the device's shared memory")
    return y
