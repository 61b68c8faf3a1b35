"""upfirdn2d without arithmetic on inserted zeros or on samples that decimation discards.

Along one axis (length L, filter f' = f, or f reversed when flip_filter, k taps) the reference
output is

    out[i] = sum_j x[j] * f'[i * down + k - 1 - p0 - j * up]      (taps outside 0..k-1 are zero)

i.e. one banded matrix A [L_out, L] per axis. Upsampling: A is applied with a matmul, which on
CPU beats any convolution over the zero-stuffed signal by far. Downsampling or plain filtering:
a depthwise convolution strided by `down` computes only the kept samples. 2-D (radial) filters
split into up_x * up_y polyphase components instead, each a small depthwise convolution.
All forms are differentiable (to second order) through ordinary torch ops.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._util import parse_padding, parse_scaling


def resample_matrix(f: torch.Tensor, length: int, up: int, down: int, p0: int, p1: int) -> torch.Tensor:
    """A [L_out, L]: the 1-D upfirdn (true convolution with f) as a matrix."""
    k = f.numel()
    out_len = (length * up + p0 + p1 - k) // down + 1
    assert out_len >= 1, "upfirdn2d output would be empty"
    i = torch.arange(out_len, device=f.device).unsqueeze(1)
    j = torch.arange(length, device=f.device).unsqueeze(0)
    tap = i * down + (k - 1 - p0) - j * up
    return torch.where((tap >= 0) & (tap < k), f[tap.clamp(0, k - 1)], f.new_zeros(()))


def _window(z: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    """z[start : start + length] along `dim`, reading zeros outside z (negative padding crops)."""
    size = z.shape[dim]
    lo, hi = max(-start, 0), max(start + length - size, 0)
    if lo or hi:
        z = F.pad(z, [0, 0] * (z.ndim - 1 - dim) + [lo, hi])
        start += lo
    return z.narrow(dim, start, length)


def _depthwise(x: torch.Tensor, w: torch.Tensor, stride=(1, 1), padding=(0, 0)) -> torch.Tensor:
    """Correlate every channel of x [N, C, H, W] with the same 2-D kernel w [kh, kw]."""
    c = x.shape[1]
    return F.conv2d(x, w[None, None].expand(c, 1, *w.shape), stride=stride, padding=padding, groups=c)


def _separable(x, f, upx, upy, downx, downy, px0, px1, py0, py1):
    h, w = x.shape[2:]
    if upx > 1:
        x = x @ resample_matrix(f, w, upx, downx, px0, px1).t()
    else:
        x = _window(x, 3, -px0, w + px0 + px1)
        x = _depthwise(x, f.flip(0)[None, :], stride=(1, downx))
    if upy > 1:
        x = resample_matrix(f, h, upy, downy, py0, py1) @ x
    else:
        x = _window(x, 2, -py0, h + py0 + py1)
        x = _depthwise(x, f.flip(0)[:, None], stride=(downy, 1))
    return x


def _polyphase_2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1):
    """Non-separable filter: output phase (ry, rx) only meets taps f[ry::upy, rx::upx]."""
    kh, kw = f.shape
    h, w = x.shape[2:]
    out_h, out_w = h * upy + py0 + py1 - kh + 1, w * upx + px0 + px1 - kw + 1
    assert out_h >= 1 and out_w >= 1, "upfirdn2d output would be empty"
    if upx == upy == 1:
        if px0 == px1 >= 0 and py0 == py1 >= 0:  # the convolution pads; no padded copy of x
            return _depthwise(x, f.flip([0, 1]), stride=(downy, downx), padding=(py0, px0))
        x = _window(_window(x, 2, -py0, h + py0 + py1), 3, -px0, w + px0 + px1)
        return _depthwise(x, f.flip([0, 1]), stride=(downy, downx))
    # c[q*up + r] = sum_t x[q - t] f[r + t*up]: per phase, correlate x with the reversed sub-filter.
    sy, sx = kh - 1 - py0, kw - 1 - px0            # first wanted index into the full convolution c
    qy0, qx0 = sy // upy, sx // upx
    ny, nx = -(-(sy + out_h) // upy) - qy0, -(-(sx + out_w) // upx) - qx0
    out = x.new_zeros([x.shape[0], x.shape[1], ny * upy, nx * upx])
    for ry in range(upy):
        for rx in range(upx):
            sub = f[ry::upy, rx::upx]
            if sub.numel() == 0:
                continue
            th, tw = sub.shape
            xw = _window(_window(x, 2, qy0 - th + 1, ny + th - 1), 3, qx0 - tw + 1, nx + tw - 1)
            out[:, :, ry::upy, rx::upx] = _depthwise(xw, sub.flip([0, 1]))
    out = out[:, :, sy - qy0 * upy:, sx - qx0 * upx:][:, :, :out_h, :out_w]
    return out[:, :, ::downy, ::downx]


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, up=1, down=1, padding=0, flip_filter: bool = False,
              gain: float = 1) -> torch.Tensor:
    assert isinstance(x, torch.Tensor) and x.ndim == 4
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    assert isinstance(f, torch.Tensor) and f.ndim in (1, 2) and f.dtype == torch.float32
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    px0, px1, py0, py1 = parse_padding(padding)

    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if flip_filter:  # the reference then correlates, i.e. convolves with f reversed
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 1:
        return _separable(x, f, upx, upy, downx, downy, px0, px1, py0, py1)
    return _polyphase_2d(x, f, upx, upy, downx, downy, px0, px1, py0, py1)
