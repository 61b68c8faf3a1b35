"""Argument parsing shared by the ops, and the implementation switch."""
from __future__ import annotations

import contextlib
import contextvars
import os

import torch

IMPLS = ("ref", "fast", "cuda")

# Per-thread/per-task override of 'auto' set by use_impl(); None means "not set".
_IMPL_OVERRIDE: contextvars.ContextVar[str | None] = contextvars.ContextVar("stylegan_ops_impl", default=None)


@contextlib.contextmanager
def use_impl(name: str):
    """Within the block, impl='auto' resolves to `name` (contextvar: each thread has its own)."""
    if name not in IMPLS:
        raise ValueError(f"unknown op implementation {name!r}; expected one of {IMPLS}")
    token = _IMPL_OVERRIDE.set(name)
    try:
        yield
    finally:
        _IMPL_OVERRIDE.reset(token)


def choose_impl(impl: str, x: torch.Tensor, *kernels: str) -> str:
    """Resolve `impl` to the implementation that will run on tensor `x`.

    'ref' is the plain arithmetic the networks were defined with, 'fast' the CPU-friendly
    reformulation (same maths, fewer flops), 'cuda' the fused kernels named by `kernels`.
    'auto' means STYLEGAN_OPS_IMPL or use_impl() if set, else 'cuda' for CUDA tensors and 'fast'
    otherwise. 'cuda' falls back to 'fast' for CPU tensors and, after one warning, when a kernel
    cannot be built (unless forced, when the build error is raised instead)."""
    if impl == "auto":
        impl = _IMPL_OVERRIDE.get() or os.environ.get("STYLEGAN_OPS_IMPL") or ("cuda" if x.is_cuda else "fast")
    if impl not in IMPLS:
        raise ValueError(f"unknown op implementation {impl!r}; expected one of {IMPLS} or 'auto'")
    if impl == "cuda":
        from . import cuda_ops
        if not kernels or any(cuda_ops.kernels(name, x) is None for name in kernels):
            impl = "fast"
    return impl


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
