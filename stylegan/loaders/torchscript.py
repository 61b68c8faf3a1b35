"""TorchScript archives read as data: their tensors, never their code.

A TorchScript file is a zip holding compiled code (`code/`), the module tree pickled into `data.pkl`
(each module an object of a `__torch__.*` class whose state is its attributes), tensor storages as
raw bytes (`data/N`, `constants/N`) and `constants.pkl`. Loading it with `torch.jit.load` compiles
and can run that code; here the pickles go through a restricted unpickler in which every
`__torch__.*` class is an inert record and only tensor rebuilding is allowed, and the code files are
kept as text. Parameters and buffers come out named and ordered as `ScriptModule.state_dict()` would
name and order them, so a module of ours can take them by name or by shape.

Tensors do not say what a file computes: two archives with the same tensors can pool, scale or
normalise differently, and only their code says which. So a file is used without running it only
when it is a known one: its sha256 is a registry entry's (`known_file`), whose computation a module
of ours reproduces (NVIDIA's `vgg16.pt` in inversion/lpips.py; the metrics map the Inception files
the same way). Anything else runs only through `load_script_module(..., trust_code=True)`, the
user's explicit word that the file's code may run."""
from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Optional

from .._errors import ParamError

import torch

from .limits import Budget
from .safe_pickle import _STORAGE_DTYPES, UnsafePickleError, _load_checked, _rebuild_parameter, _rebuild_tensor_v2


class ScriptObject:
    """One object of the archive's module tree: its class's qualified name and its attributes."""
    qualified_name = "__torch__"

    def __new__(cls, *args):
        return object.__new__(cls)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafePickleError(f"{self.qualified_name}: object state is not a dict")
        self.attributes = state

    def __repr__(self) -> str:
        return f"<{self.qualified_name}>"


def _restore_type_tag(value, type_str=None):
    return value


def _build_list(data):
    if not isinstance(data, list):
        raise UnsafePickleError("TorchScript list of something that is not a list")
    return data


_JIT_PICKLE = {"restore_type_tag": _restore_type_tag, "build_intlist": _build_list, "build_doublelist": _build_list,
               "build_boollist": _build_list, "build_tensorlist": _build_list}


@dataclass
class ScriptArchive:
    """What a TorchScript file holds, read without running it."""
    root_class: str                             # e.g. '__torch__.Vgg16Standin'
    tensors: dict[str, torch.Tensor]            # state_dict names and order: module by module, parameters then buffers
    parameters: set[str]                        # the names in `tensors` that are parameters
    constants: list[Any] = field(default_factory=list)
    code: dict[str, str] = field(default_factory=dict, repr=False)   # code files, as text only
    sha256: str = ""


def is_torchscript(path: str | os.PathLike) -> bool:
    """A zip with compiled code beside its data: TorchScript (torch.save's zips hold only data)."""
    from ..io.files import is_regular_file
    if not is_regular_file(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


class UntrustedCodeError(ParamError):
    """A TorchScript file that would have to run to be used, without the user's leave to run it."""


def known_file(archive: ScriptArchive):
    """The registry entry (a TorchScript file by its sha256) this archive is, or None."""
    from .. import hub
    return next((e for e in hub.entries() if e.format == "torchscript" and e.sha256 is not None
                 and len(e.sha256) == 64 and e.sha256.lower() == archive.sha256), None)


def load_script_module(path: str | os.PathLike, device: torch.device | str = "cpu", *,
                       trust_code: bool = False) -> torch.jit.ScriptModule:
    """Load a TorchScript module to run it: this executes code from the file, with the user's rights,
    so it happens only with `trust_code=True`. Raises UntrustedCodeError without it, a one-line
    ValueError for a file torch cannot load."""
    from .._errors import first_line
    from ..io.files import check_regular_file
    if not trust_code:
        raise UntrustedCodeError(f"{path}: an unknown TorchScript file, and using it means running code from the "
                                 f"file: pass {{trust_code=True}} only if you trust where it came from", "trust_code")
    check_regular_file(path, "a TorchScript file")
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except (RuntimeError, ValueError, OSError) as e:
        raise ValueError(f"{path}: not a TorchScript module torch can load ({first_line(e)})") from None


def read_torchscript(path: str | os.PathLike, budget: Optional[Budget] = None) -> ScriptArchive:
    """The tensors of a TorchScript file, read as data. Raises ValueError (one line) for anything else."""
    from ..io.files import check_regular_file
    path = check_regular_file(path, "a TorchScript file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from None
    budget = budget or Budget(len(raw))
    try:
        z = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not a TorchScript file (not a zip archive)") from None
    names = z.namelist()
    data_pkl = [n for n in names if n.endswith("/data.pkl")]
    if len(data_pkl) != 1 or not is_torchscript(path):
        raise ValueError(f"{path}: not a TorchScript file (no compiled module in the archive)")
    prefix = data_pkl[0][: -len("data.pkl")]
    try:
        root = _unpickle(z, prefix, "data", budget)
        constants = _unpickle(z, prefix, "constants", budget) if f"{prefix}constants.pkl" in names else ()
    except (UnsafePickleError, ValueError, KeyError, EOFError, TypeError) as e:
        raise ValueError(f"{path}: unreadable TorchScript archive ({' '.join(str(e).split())})") from None
    if not isinstance(root, ScriptObject):
        raise ValueError(f"{path}: TorchScript archive without a module at its root")
    code = {n[len(prefix) + len("code/"):]: z.read(n).decode("utf-8", "replace")
            for n in names if n.startswith(f"{prefix}code/") and n.endswith(".py")}
    tensors, params = {}, set()
    _collect(root, "", _declared_slots(code), tensors, params)
    return ScriptArchive(root.qualified_name, tensors, params, list(constants or ()), code,
                         hashlib.sha256(raw).hexdigest())


def _unpickle(z: zipfile.ZipFile, prefix: str, which: str, budget: Budget) -> Any:
    def storage(pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise UnsafePickleError("malformed storage reference")
        _, dtype, key, _location, numel = pid
        blob = z.read(f"{prefix}{which}/{key}") if which == "data" else _constant_blob(z, prefix, key)
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if not isinstance(numel, int) or numel < 0 or numel * itemsize > len(blob):
            raise ValueError(f"storage {key} is shorter than the {numel} elements it declares")
        budget.charge(numel * itemsize, "a tensor storage")
        return torch.frombuffer(bytearray(blob[: numel * itemsize]), dtype=dtype) if numel else torch.empty(0, dtype=dtype)

    class Unpickler(_ArchiveUnpickler):
        def persistent_load(self, pid):
            return storage(pid)

    return _load_checked(Unpickler, io.BytesIO(z.read(f"{prefix}{which}.pkl")), budget=budget)


def _constant_blob(z: zipfile.ZipFile, prefix: str, key: str) -> bytes:
    # Archives written by older torch keep constants' storages under data/ with a 'constants/' key.
    for name in (f"{prefix}constants/{key}", f"{prefix}{key}", f"{prefix}data/{key}"):
        if name in z.namelist():
            return z.read(name)
    raise KeyError(f"constant storage {key}")


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, f, budget: Budget):
        super().__init__(f)
        self.budget = budget
        self.classes: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qualified = f"{module}.{name}"
            if qualified not in self.classes:   # an inert record type per class name: no methods, no code
                self.classes[qualified] = type(name, (ScriptObject,), {"qualified_name": qualified})
            return self.classes[qualified]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda *a: _rebuild_tensor_v2(*a, budget=self.budget)
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in _JIT_PICKLE:
            return _JIT_PICKLE[name]
        raise UnsafePickleError(f"refusing global {module}.{name} in a TorchScript archive")


_LIST = re.compile(r"^  __(parameters|buffers)__ = \[(.*)\]$", re.M)


def _declared_slots(code: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    """`__parameters__` / `__buffers__` of every class in the code files, read as text: the order and
    the kind that `state_dict()` gives each tensor attribute. Keyed by qualified class name."""
    out: dict[str, dict[str, list[str]]] = {}
    for file, text in code.items():
        module = "__torch__." + file[: -len(".py")].replace("/", ".") if file != "__torch__.py" else "__torch__"
        module = module.replace("__torch__.__torch__", "__torch__")
        for m in re.finditer(r"^class (\w+)\(Module\):\n((?:[ \t]+.*\n|\n)*)", text, re.M):
            slots = {k: re.findall(r'"([^"]+)"', v) for k, v in _LIST.findall(m.group(2))}
            out[f"{module}.{m.group(1)}"] = slots
    return out


def _collect(obj: ScriptObject, prefix: str, slots: dict, tensors: dict, params: set) -> None:
    attrs = getattr(obj, "attributes", {})
    declared = slots.get(obj.qualified_name, {})
    order = [n for n in declared.get("parameters", []) + declared.get("buffers", []) if n in attrs]
    order += [n for n, v in attrs.items() if isinstance(v, torch.Tensor) and n not in order]
    for name in order:
        value = attrs[name]
        if isinstance(value, torch.Tensor):     # None for an optional parameter (a Linear without bias)
            tensors[prefix + name] = value
            if name in declared.get("parameters", []):
                params.add(prefix + name)
    for name, value in attrs.items():
        if isinstance(value, ScriptObject):
            _collect(value, f"{prefix}{name}.", slots, tensors, params)
