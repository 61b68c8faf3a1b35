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
