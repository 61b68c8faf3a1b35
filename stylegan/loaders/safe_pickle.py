"""A pickle reader that builds data, never behaviour.

Every global a pickle names must be on an allow-list; each maps to a constructor of our own (or a
numpy/collections type whose unpickling only fills in data). NVIDIA's persistent classes become
inert `PersistentObject` records: the module source they carry is kept as text, never executed.
Tensors are rebuilt by our code from torch's legacy storage streams."""
from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch


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


def load_storage_bytes(blob: bytes) -> torch.Tensor:
    """A legacy (non-zip) torch.save stream of one storage -> a flat tensor of its elements."""
    if not isinstance(blob, (bytes, bytearray)):
        raise UnsafePickleError("storage blob is not bytes")
    f = io.BytesIO(blob)
    magic = _StorageUnpickler(f).load()
    if magic != 0x1950A86A20F9469CFC6C:
        raise ValueError("tensor storage has a bad magic number")
    _StorageUnpickler(f).load()           # protocol version
    _StorageUnpickler(f).load()           # sys info (endianness, type sizes)
    ref = _StorageUnpickler(f).load()     # ('storage', type, key, location, numel, view)
    keys = _StorageUnpickler(f).load()
    if not (isinstance(ref, tuple) and isinstance(keys, list) and len(keys) == 1):
        raise ValueError("tensor storage stream is malformed")
    dtype, numel = ref[1].dtype, ref[4]
    (count,) = struct.unpack("<q", f.read(8))
    itemsize = torch.empty(0, dtype=dtype).element_size()
    data = f.read(count * itemsize)
    if count != numel or len(data) != count * itemsize:
        raise ValueError("tensor storage is truncated")
    return torch.frombuffer(bytearray(data), dtype=dtype) if count else torch.empty(0, dtype=dtype)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise UnsafePickleError("tensor built on something that is not a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride) or any(s < 0 for s in size + stride) or storage_offset < 0:
        raise ValueError("tensor has an invalid shape")
    end = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0
    if end > storage.numel():
        raise ValueError("tensor reaches past its storage")
    return torch.as_strided(storage, size, stride, storage_offset).clone()


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("parameter built on something that is not a tensor")
    return data


# --- numpy -------------------------------------------------------------------------------------

def _np_reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise UnsafePickleError("numpy array of a subclass")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("numpy scalar of an object type")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _np_dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise UnsafePickleError("numpy object dtype")
    return dt


def _np_frombuffer(buf, dtype, shape, order):
    # Protocol-5 pickles carry arrays as raw buffers.
    dtype = np.dtype(dtype)
    if dtype.hasobject or order not in ("C", "F"):
        raise UnsafePickleError("numpy buffer of an object type")
    return np.frombuffer(bytes(buf), dtype=dtype).reshape(shape, order=order).copy()


_NUMPY = {"multiarray._reconstruct": _np_reconstruct, "multiarray.scalar": _np_scalar,
          "numeric._frombuffer": _np_frombuffer}

ALLOWED: dict[tuple[str, str], Callable | type] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Protocols 2 and 3 have no set opcode: old files write `_non_persistent_buffers_set` this way.
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): load_storage_bytes,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _np_dtype,
    # numpy 1.x wrote its helpers under numpy.core, numpy 2 under numpy._core.
    **{(f"{pkg}.{sub}", name): fn for pkg in ("numpy.core", "numpy._core")
       for (sub, name), fn in ((k.rsplit(".", 1), v) for k, v in _NUMPY.items())},
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing global {module}.{name} (not on the allow-list)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a persistent reference at the top level")


def safe_load(f) -> Any:
    """Unpickle from a binary file object with the allow-list; numpy arrays are checked after BUILD."""
    obj = RestrictedUnpickler(f).load()
    _check_no_objects(obj)
    return obj


def _check_no_objects(obj: Any, depth: int = 0) -> None:
    # An ndarray's BUILD could install an object dtype; refuse any such array anywhere in the tree.
    if depth > 200:
        raise ValueError("pickle nests too deeply")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UnsafePickleError("numpy array of Python objects")
    elif isinstance(obj, dict):
        for v in obj.values():
            _check_no_objects(v, depth + 1)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            _check_no_objects(v, depth + 1)
    elif isinstance(obj, PersistentObject):
        _check_no_objects(obj.state, depth + 1)
    elif isinstance(obj, TFNetwork):
        _check_no_objects(getattr(obj, "state", {}), depth + 1)
