"""A pickle reader that builds data, never behaviour.

Every global a pickle names must be on an allow-list; each maps to a constructor of our own (or a
numpy/collections type whose unpickling only fills in data). NVIDIA's persistent classes become
inert `PersistentObject` records: the module source they carry is kept as text, never executed.
Tensors are rebuilt by our code from torch's legacy storage streams.

Nothing a pickle declares is trusted for sizes: every length is checked against the bytes present
before the C unpickler sees it (it allocates a declared length up front), and every tensor, array,
storage and container built is charged to the file's allocation budget (see limits.py)."""
from __future__ import annotations

import collections
import functools
import io
import math
import pickle
import pickletools
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .limits import Budget, tensor_bytes


class UnsafePickleError(ValueError):
    """The pickle names a global that is not on the allow-list."""


@dataclass
class PersistentObject:
    """An object of one of NVIDIA's persistent classes: its class name and instance __dict__."""
    class_name: str
    state: dict
    module_src: str = field(repr=False, default="")


class EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict (a dict with attribute access; the data is all we need)."""


class TFNetwork:
    """Stand-in for dnnlib.tflib.network.Network: keeps the pickled state dict, runs no TF."""

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError("TF network state is not a dict")
        self.state = state


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise UnsafePickleError("malformed persistent object")
    return PersistentObject(str(meta.get("class_name")), meta["state"], str(meta.get("module_src", "")))


# --- tensors ------------------------------------------------------------------------------------

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


class _StorageUnpickler(pickle.Unpickler):
    """The header pickles of a legacy torch.save stream: only storage type globals are allowed."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise UnsafePickleError(f"refusing global {module}.{name} inside a tensor storage")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError("malformed storage reference")
        return pid


def _load_checked(unpickler: type[pickle.Unpickler], f: io.BytesIO, **kwargs) -> Any:
    """One pickle from `f`, its declared lengths first checked against the bytes that remain."""
    start = f.tell()
    for _ in pickletools.genops(f):     # raises ValueError on a length past the end or an unknown opcode
        pass
    f.seek(start)
    return unpickler(f, **kwargs).load()


def load_storage_bytes(blob: bytes, budget: Budget | None = None) -> torch.Tensor:
    """A legacy (non-zip) torch.save stream of one storage -> a flat tensor of its elements."""
    if not isinstance(blob, (bytes, bytearray)):
        raise UnsafePickleError("storage blob is not bytes")
    if budget is not None:
        budget.charge(len(blob), "a tensor storage")   # one blob may be referenced many times
    f = io.BytesIO(blob)
    magic = _load_checked(_StorageUnpickler, f)
    if magic != 0x1950A86A20F9469CFC6C:
        raise ValueError("tensor storage has a bad magic number")
    _load_checked(_StorageUnpickler, f)           # protocol version
    _load_checked(_StorageUnpickler, f)           # sys info (endianness, type sizes)
    ref = _load_checked(_StorageUnpickler, f)     # ('storage', type, key, location, numel, view)
    keys = _load_checked(_StorageUnpickler, f)
    if not (isinstance(ref, tuple) and isinstance(keys, list) and len(keys) == 1):
        raise ValueError("tensor storage stream is malformed")
    dtype, numel = ref[1].dtype, ref[4]
    (count,) = struct.unpack("<q", f.read(8))
    itemsize = torch.empty(0, dtype=dtype).element_size()
    if count != numel or count < 0 or count * itemsize > len(blob) - f.tell():
        raise ValueError("tensor storage is truncated")
    data = f.read(count * itemsize)
    return torch.frombuffer(bytearray(data), dtype=dtype) if count else torch.empty(0, dtype=dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None, budget: Budget | None = None) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise UnsafePickleError("tensor built on something that is not a storage")
    size, stride, storage_offset = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(storage_offset)
    if len(size) != len(stride) or any(s < 0 for s in size + stride) or storage_offset < 0:
        raise ValueError("tensor has an invalid shape")
    numel = math.prod(size)
    end = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if numel else 0
    # A stride of 0 repeats elements: a tensor may never hold more elements than its storage.
    if end > storage.numel() or numel > storage.numel():
        raise ValueError(f"tensor of shape {list(size)} reaches past its storage of {storage.numel()} elements")
    if numel == storage.numel() and storage_offset == 0 and stride == _contiguous_strides(size):
        return storage.view(size)       # the whole storage, as torch.save writes parameters: no copy
    if budget is not None:
        budget.charge(tensor_bytes(size, storage.dtype), "a tensor")
    return torch.as_strided(storage, size, stride, storage_offset).clone()


def _contiguous_strides(size: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(size):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("parameter built on something that is not a tensor")
    return data


# --- numpy -------------------------------------------------------------------------------------

class _NdarrayClass:
    """Stands for numpy.ndarray where a pickle names it: only `_reconstruct` accepts it, and calling
    it cannot allocate an array of a declared shape."""

    def __new__(cls, *args, **kwargs):
        raise UnsafePickleError("refusing a direct call of numpy.ndarray")


def _np_reconstruct(subtype, shape, dtype_code, budget: Budget | None = None):
    if subtype is not _NdarrayClass:
        raise UnsafePickleError("numpy array of a subclass")
    dtype = _np_dtype(dtype_code)
    if budget is not None:
        budget.charge(math.prod(int(n) for n in shape) * dtype.itemsize, "a numpy array")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("numpy scalar of an object type")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _np_dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise UnsafePickleError("numpy object dtype")
    return dt


def _np_frombuffer(buf, dtype, shape, order, budget: Budget | None = None):
    # Protocol-5 pickles carry arrays as raw buffers.
    dtype = np.dtype(dtype)
    if dtype.hasobject or order not in ("C", "F"):
        raise UnsafePickleError("numpy buffer of an object type")
    if budget is not None:
        budget.charge(2 * len(buf), "a numpy array")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


def _container(cls: type, *args, budget: Budget | None = None):
    # A container rebuilt from one shared list per reference would multiply it: charge its length.
    if budget is not None and args:
        budget.charge(64 * len(args[0]) if hasattr(args[0], "__len__") else 0, f"a {cls.__name__}")
    return cls(*args)


_NUMPY = {"multiarray._reconstruct": _np_reconstruct, "multiarray.scalar": _np_scalar,
          "numeric._frombuffer": _np_frombuffer}

ALLOWED: dict[tuple[str, str], Callable | type] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("collections", "OrderedDict"): functools.partial(_container, collections.OrderedDict),
    # Protocols 2 and 3 have no set opcode: old files write `_non_persistent_buffers_set` this way.
    ("builtins", "set"): functools.partial(_container, set),
    ("__builtin__", "set"): functools.partial(_container, set),
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): load_storage_bytes,
    ("numpy", "ndarray"): _NdarrayClass,
    ("numpy", "dtype"): _np_dtype,
    # numpy 1.x wrote its helpers under numpy.core, numpy 2 under numpy._core.
    **{(f"{pkg}.{sub}", name): fn for pkg in ("numpy.core", "numpy._core")
       for (sub, name), fn in ((k.rsplit(".", 1), v) for k, v in _NUMPY.items())},
}


# Constructors that allocate: they are handed the file's budget.
_BUDGETED = {_rebuild_tensor_v2, load_storage_bytes, _np_reconstruct, _np_frombuffer, _container}


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, budget: Budget | None = None):
        super().__init__(f)
        self.budget = budget

    def find_class(self, module: str, name: str) -> Any:
        try:
            fn = ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing global {module}.{name} (not on the allow-list)") from None
        base = fn.func if isinstance(fn, functools.partial) else fn
        return functools.partial(fn, budget=self.budget) if base in _BUDGETED else fn

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a persistent reference at the top level")


def safe_load(f, budget: Budget | None = None) -> Any:
    """Unpickle from a binary file object with the allow-list; numpy arrays are checked after BUILD."""
    data = f.read()
    obj = _load_checked(RestrictedUnpickler, io.BytesIO(data), budget=budget)
    _check_no_objects(obj)
    return obj


def _check_no_objects(obj: Any) -> None:
    # An ndarray's BUILD could install an object dtype; refuse any such array anywhere in the tree.
    # Shared references are visited once, so a pickle of nested shared lists cannot blow up the walk.
    seen, todo = set(), [obj]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise UnsafePickleError("numpy array of Python objects")
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple, set)):
            todo.extend(obj)
        elif isinstance(obj, PersistentObject):
            todo.append(obj.state)
        elif isinstance(obj, TFNetwork):
            todo.append(getattr(obj, "state", {}))
