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


def network_digest(module: torch.nn.Module) -> str:
    """Hex sha256 of a module's state dict (names, dtypes, shapes and bytes, in order): the same
    weights give the same digest on any device and after any save/load round trip."""
    import hashlib
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        shape = t.shape
        t = t.detach().cpu().contiguous().reshape(-1)   # 0-d tensors cannot be viewed as bytes
        h.update(f"{name}:{str(t.dtype).removeprefix('torch.')}:{list(shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
