"""Shape assertions and parameter helpers used throughout the networks."""
from __future__ import annotations

import torch


def assert_shape(tensor: torch.Tensor, ref_shape) -> None:
    """Assert `tensor.shape` matches `ref_shape`; None entries match any size.

    Entries may be ints or 0-d tensors (so traced code keeps working)."""
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f"wrong number of dimensions: got {tensor.ndim}, expected {len(ref_shape)}")
    for idx, (size, ref) in enumerate(zip(tensor.shape, ref_shape)):
        if ref is None:
            continue
        if isinstance(ref, torch.Tensor):
            ref = int(ref)
        if size != ref:
            raise AssertionError(f"wrong size for dimension {idx}: got {size}, expected {ref}")


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
