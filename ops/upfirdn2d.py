"""upfirdn2d: upsample by zero insertion, pad, FIR-filter, downsample by decimation.

For an input [N, C, H, W], filter f (1-D separable [k] or 2-D [kh, kw]), factors up/down and padding
(px0, px1, py0, py1), the output width is

    (W * up + px0 + px1 - kw + down) // down

and likewise for the height. Filtering is true convolution (the filter is flipped) unless
`flip_filter` is set; `gain` scales the filter, so its effective sum is `gain` for a normalised f.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import _selfcheck, cuda_ops, upfirdn2d_fast
from ._dispatch import choose_impl
from ._util import filter_size, parse_padding, parse_scaling


def setup_filter(f, device=torch.device("cpu"), normalize: bool = True, flip_filter: bool = False,
                 gain: float = 1, separable: bool | None = None) -> torch.Tensor:
    """Turn a list of taps into a float32 filter tensor.

    A 1-D filter stays separable only when long (>= 8 taps) or asked to; short ones become their
    outer product, which is what the networks' `resample_filter` buffers store."""
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    assert f.ndim in (0, 1, 2) and f.numel() > 0
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    assert f.ndim == (1 if separable else 2)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0, flip_filter: bool = False,
              gain: float = 1, impl: str = "auto") -> torch.Tensor:
    """Public entry point; `impl` selects 'ref' | 'fast' | 'cuda' | 'auto'."""
    impl = choose_impl(impl, x, "upfirdn2d")
    if impl == "cuda":
        return cuda_ops.upfirdn2d(cuda_ops.kernels("upfirdn2d", x).upfirdn2d, x, f, up, down, padding, flip_filter, gain)
    if impl == "ref":
        return _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
    return upfirdn2d_fast.upfirdn2d(x, f, up, down, padding, flip_filter, gain)


def _upfirdn2d_ref(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Literal form: zero-stuff, pad, depthwise conv with the full filter, then decimate."""
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    assert isinstance(f, torch.Tensor) and f.ndim in (1, 2) and f.dtype == torch.float32
    n, c, h, w = x.shape
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)

    # Upsample by inserting up-1 zeros after every sample.
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
    x = x.reshape(n, c, h * upy, w * upx)

    # Pad, or crop where the padding is negative.
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    # conv2d correlates, so flip the filter to convolve (unless asked not to).
    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(x, f.unsqueeze(2), groups=c)
        x = F.conv2d(x, f.unsqueeze(3), groups=c)

    return x[:, :, ::downy, ::downx]


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Filter without resampling; output size equals input size plus padding."""
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Upsample by `up` with filter f; output is exactly up times the input size plus padding."""
    upx, upy = parse_scaling(up)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw + upx - 1) // 2, px1 + (fw - upx) // 2, py0 + (fh + upy - 1) // 2, py1 + (fh - upy) // 2]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Downsample by `down` with filter f; output is the input size (plus padding) divided by down."""
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)
    fw, fh = filter_size(f)
    p = [px0 + (fw - downx + 1) // 2, px1 + (fw - downx) // 2, py0 + (fh - downy + 1) // 2, py1 + (fh - downy) // 2]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


@_selfcheck.register("upfirdn2d")
def _self_check(K, device: torch.device) -> list:
    """The fused kernel against the reference: the networks' up- and downsampling by 2 with a 2-D
    filter, and a long separable filter, forward, gradient, and second order in float32 (R1)."""
    f4 = setup_filter([1, 3, 3, 1])
    f12 = setup_filter([1, 2, 4, 7, 9, 10, 10, 9, 7, 4, 2, 1])
    x = _selfcheck.randn(2, 3, 9, 10, seed=3)
    out = []
    for dtype in _selfcheck.DTYPES:
        for what, f, kw in (("up", f4, dict(up=2, padding=[2, 1, 2, 1], gain=4)), ("down", f4, dict(down=2, padding=1)),
                            ("12-tap up", f12, dict(up=2, padding=[6, 5, 6, 5], gain=4))):
            out += _selfcheck.against_reference(
                f"upfirdn2d {what}", lambda x: cuda_ops.upfirdn2d(K.upfirdn2d, x, f.to(device), **kw),
                lambda x: _upfirdn2d_ref(x, f, **kw), [x], device, dtype, second_order=dtype == torch.float32)
    return out
