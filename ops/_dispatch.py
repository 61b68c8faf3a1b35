"""impl='auto' | 'ref' | 'fast' | 'cuda' -> the implementation that runs on a given tensor."""
from __future__ import annotations

import torch

from . import cuda_ops
from ._impl import IMPLS, requested_impl


def choose_impl(impl: str, x: torch.Tensor, *kernels: str) -> str:
    """Resolve `impl` to the implementation that will run on tensor `x`.

    'ref' is the plain arithmetic the networks were defined with, 'fast' the CPU-friendly
    reformulation (same maths, fewer flops), 'cuda' the fused kernels named by `kernels`.
    'auto' means STYLEGAN_OPS_IMPL or use_impl() if set, else 'cuda' for CUDA tensors and 'fast'
    otherwise. 'cuda' falls back to 'fast' for CPU tensors and, after one warning, when a kernel
    cannot be built (unless forced, when the build error is raised instead)."""
    if impl == "auto":
        impl = requested_impl() or ("cuda" if x.is_cuda else "fast")
    if impl not in IMPLS:
        raise ValueError(f"unknown op implementation {impl!r}; expected one of {IMPLS} or 'auto'")
    # Looked up on the module at call time: the tests route it to a CPU build of the kernels.
    if impl == "cuda" and (not kernels or any(cuda_ops.kernels(name, x) is None for name in kernels)):
        impl = "fast"
    return impl
