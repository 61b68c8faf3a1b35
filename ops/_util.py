"""Argument parsing shared by the ops."""
from __future__ import annotations

import torch


def needs_grad(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd will differentiate through any of `tensors`: only then must an op keep its
    inputs intact and its steps out of place."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def parse_scaling(scaling) -> tuple[int, int]:
    """int or [sx, sy] -> (sx, sy)."""
    if isinstance(scaling, int):
        scaling = [scaling, scaling]
    sx, sy = scaling
    assert isinstance(sx, int) and isinstance(sy, int) and sx >= 1 and sy >= 1
    return sx, sy


def parse_padding(padding) -> tuple[int, int, int, int]:
    """int, [px, py] or [px0, px1, py0, py1] -> (px0, px1, py0, py1)."""
    if isinstance(padding, int):
        padding = [padding, padding]
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    assert len(padding) == 4
    return tuple(padding)


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Filter -> (width, height); a 1-D filter is separable, so square."""
    if f is None:
        return 1, 1
    assert isinstance(f, torch.Tensor) and f.ndim in (1, 2)
    return f.shape[-1], f.shape[0]


def channel_dot(a: torch.Tensor, b: torch.Tensor, chunk_bytes: int = 1 << 22) -> torch.Tensor:
    """sum over H, W of a * b, per (n, c): [N, C, H, W] x2 -> [N, C], a block of rows at a time, so
    no product of the full size is ever held (a 1024 px layer's would be 128 MB)."""
    n, c, h, w = a.shape
    rows = max(1, chunk_bytes // max(1, a.element_size() * n * c * w))
    total = (a[:, :, :rows] * b[:, :, :rows]).sum((2, 3))
    for r in range(rows, h, rows):
        total += (a[:, :, r:r + rows] * b[:, :, r:r + rows]).sum((2, 3))
    return total


class _ScaleChannels(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, s):
        ctx.save_for_backward(x, s)
        return x * s[:, :, None, None]

    @staticmethod
    def backward(ctx, grad):
        x, s = ctx.saved_tensors
        gx = grad * s[:, :, None, None] if ctx.needs_input_grad[0] else None
        gs = channel_dot(grad, x) if ctx.needs_input_grad[1] else None
        return gx, gs


def scale_channels(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] * s [N, C]; under autograd, s's gradient is summed without a full-size product."""
    assert s.shape == x.shape[:2], (tuple(s.shape), tuple(x.shape))
    return _ScaleChannels.apply(x, s) if needs_grad(s) else x * s[:, :, None, None]
