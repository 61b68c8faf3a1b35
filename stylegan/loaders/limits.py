"""How much a model file may make the loader allocate: a few times its own size, never more.

A few bytes of pickle can ask for a tensor of any shape (a zero stride repeats one element), a
storage of any length, a container or storage rebuilt once per reference to one shared blob, or a
network of any width. Each loader charges what it is about to allocate against a `Budget` made from
the file's size, and network construction runs under `allocation_limit`, so such a file fails with
one line instead of exhausting memory."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch.overrides import TorchFunctionMode

# Real files: tensors once as bytes read, once as storages; float16 files grow 2x when converted.
FACTOR = 4
SLACK = 64 << 20


class AllocationLimitError(ValueError):
    """Loading would allocate far more memory than the file could hold."""


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


class Budget:
    """A running count of bytes allocated on behalf of one file, capped at FACTOR x its size + SLACK."""

    def __init__(self, file_bytes: int):
        self.file_bytes = int(file_bytes)
        self.limit = FACTOR * self.file_bytes + SLACK
        self.used = 0

    def charge(self, nbytes: int, what: str) -> None:
        self.used += max(int(nbytes), 0)
        if self.used > self.limit:
            raise AllocationLimitError(f"{what} would take the loader past {_size(self.used)}, far more than "
                                       f"a {_size(self.file_bytes)} file holds (refused)")


def tensor_bytes(size, dtype: torch.dtype) -> int:
    return math.prod(int(s) for s in size) * torch.empty(0, dtype=dtype).element_size()


# --- network construction ------------------------------------------------------------------------

_FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.randn, torch.rand, torch.full}
_NEW = {torch.Tensor.new_empty, torch.Tensor.new_zeros, torch.Tensor.new_ones, torch.Tensor.new_full}


def _requested(func, args, kwargs) -> int | None:
    """Bytes a factory call will allocate, from its arguments (before it runs)."""
    if func in _FACTORIES:
        size = kwargs.get("size", args[0] if func is torch.full or (len(args) == 1 and not isinstance(args[0], int))
                          else args)
    elif func in _NEW:
        size = kwargs.get("size", args[1] if len(args) > 1 else ())
    elif func is torch.eye:
        size = (args[0], args[1] if len(args) > 1 and isinstance(args[1], int) else args[0])
    else:
        return None
    if isinstance(size, int):
        size = (size,)
    dtype = kwargs.get("dtype") or (args[0].dtype if func in _NEW else torch.get_default_dtype())
    return tensor_bytes(size, dtype)


class _Guard(TorchFunctionMode):
    def __init__(self, budget: Budget, what: str):
        super().__init__()
        self.budget, self.what = budget, what

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        planned = _requested(func, args, kwargs)
        if planned is not None:
            self.budget.charge(planned, self.what)
        out = func(*args, **kwargs)
        if planned is None:
            # Other ops: charge what they made; shared storages (views, in-place ops, Parameter) are free.
            inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, kwargs))}
            self.budget.charge(sum(t.untyped_storage().nbytes() for t in _tensors(out)
                                   if t.untyped_storage().data_ptr() not in inputs), self.what)
        return out


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        if obj.device.type != "meta":
            yield obj
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)


@contextmanager
def allocation_limit(budget: Budget | None, what: str = "building the network"):
    """Tensors allocated inside are charged to `budget` (factories before they run)."""
    if budget is None:
        yield
        return
    with _Guard(budget, what):
        yield


# Settings that drive work outside torch (filter design in numpy, per-layer loops): a file may not
# ask for more than any real network uses, by a wide margin.
PLAUSIBLE = {"num_layers": 64, "num_critical": 64, "filter_size": 64, "lrelu_upsampling": 16, "conv_kernel": 31,
             "margin_size": 1024, "img_resolution": 1 << 14, "img_channels": 64, "mbstd_num_channels": 64}
MAX_LIST = 64


def check_settings(kwargs: Any, name: str = "") -> None:
    """Refuse constructor settings no real network has (huge layer counts, filter lengths, resolutions)."""
    if isinstance(kwargs, dict):
        for k, v in kwargs.items():
            check_settings(v, str(k))
    elif isinstance(kwargs, (list, tuple)):
        if len(kwargs) > MAX_LIST:
            raise ValueError(f"implausible setting {name}: a list of {len(kwargs)} values")
        for v in kwargs:
            check_settings(v, name)
    elif isinstance(kwargs, (int, float)) and not isinstance(kwargs, bool):
        cap = PLAUSIBLE.get(name)
        if cap is not None and not (kwargs <= cap):
            raise ValueError(f"implausible setting {name}={kwargs} (real networks use at most {cap})")
        if isinstance(kwargs, int) and abs(kwargs) > 1 << 24:
            raise ValueError(f"implausible setting {name}={kwargs}")
