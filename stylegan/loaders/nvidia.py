"""NVIDIA network pickles (stylegan2-ada-pytorch, stylegan3) -> our modules.

A snapshot is a dict of persistent objects ('G', 'D', 'G_ema', 'augment_pipe') plus plain data
('training_set_kwargs'). Each object records its class name, constructor kwargs and module state;
we rebuild the state dict from the state and the network from the kwargs."""
from __future__ import annotations

import collections
import json
from typing import Any

import numpy as np
import torch

from .kwargs import canonical_kwargs, is_ada_form
from .safe_pickle import PersistentObject
from .spec import NetSpec

NETWORK_KEYS = ("G", "D", "G_ema")


# Settings and metadata are a few dozen values; shared references in a pickle could make a small
# file expand into an enormous tree when copied, so copying stops well before that.
MAX_PLAIN_VALUES = 100_000
MAX_PLAIN_DEPTH = 32


def plain(obj: Any) -> Any:
    """EasyDicts, OrderedDicts, tuples and numpy scalars -> JSON-able Python values."""
    count = [0]

    def copy(obj: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > MAX_PLAIN_VALUES or depth > MAX_PLAIN_DEPTH:
            raise ValueError("settings or metadata nest too deeply or hold too many values")
        if isinstance(obj, dict):
            return {str(k): copy(v, depth + 1) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [copy(v, depth + 1) for v in obj]
        if isinstance(obj, np.ndarray) and obj.ndim == 0:
            return obj.item()
        if isinstance(obj, np.generic):
            return obj.item()
        return obj
    return copy(obj, 0)


def state_dict(obj: PersistentObject, prefix: str = "", out: dict | None = None,
               seen: set | None = None) -> dict[str, torch.Tensor]:
    """Parameters, then persistent buffers, then submodules: torch's own state_dict order."""
    out = collections.OrderedDict() if out is None else out
    seen = set() if seen is None else seen
    if id(obj) in seen:
        # A module listed twice (or inside itself) would multiply the tensors walked; no network does it.
        raise ValueError(f"submodule {prefix.rstrip('.')} appears more than once in the network")
    seen.add(id(obj))
    st = obj.state
    if not isinstance(st, dict):
        raise ValueError(f"module {prefix.rstrip('.') or obj.class_name} has no state dict")
    skip = set(st.get("_non_persistent_buffers_set") or ())
    for name, t in _entries(st, "_parameters"):
        if t is not None:
            out[prefix + name] = _tensor(t, prefix + name)
    for name, t in _entries(st, "_buffers"):
        if t is not None and name not in skip:
            out[prefix + name] = _tensor(t, prefix + name)
    for name, m in _entries(st, "_modules"):
        if isinstance(m, PersistentObject):
            state_dict(m, f"{prefix}{name}.", out, seen)
        elif m is not None:
            raise ValueError(f"submodule {prefix}{name} is not a network module")
    return out


def _entries(state: dict, key: str) -> list:
    value = state.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"module {key} is not a dict")
    return [(str(k), v) for k, v in value.items()]


def _tensor(t: Any, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} is a {type(t).__name__}, not a tensor")
    return t


def submodules(obj: PersistentObject) -> dict:
    modules = obj.state.get("_modules") or {}
    return modules if isinstance(modules, dict) else {}


def arch_of(obj: PersistentObject) -> str:
    """Which of our architectures a persistent object is; its module path is not recorded."""
    if obj.class_name == "Generator":
        synthesis = submodules(obj).get("synthesis")
        children = submodules(synthesis) if isinstance(synthesis, PersistentObject) else {}
        if "input" in children:
            return "stylegan3"
        if "b4" in children:
            return "stylegan2"
        raise ValueError("generator of an unknown family (neither StyleGAN2 nor StyleGAN3 layers)")
    if obj.class_name == "Discriminator":
        return "stylegan2_discriminator"
    raise ValueError(f"unsupported network class {obj.class_name!r}")


def convert(data: dict) -> tuple[dict[str, NetSpec], dict]:
    """Snapshot dict -> ({key: network spec}, metadata)."""
    nets, meta = {}, {}
    for key, value in data.items():
        if key in NETWORK_KEYS and isinstance(value, PersistentObject):
            if value.state.get("_init_args"):
                raise ValueError(f"{key} was built with positional arguments, which are not supported")
            kwargs = plain(value.state.get("_init_kwargs") or {})
            nets[key] = NetSpec(arch_of(value), kwargs, state_dict(value))
        elif key == "augment_pipe" and isinstance(value, PersistentObject):
            meta["augment_pipe_kwargs"] = plain(value.state.get("_init_kwargs") or {})
        elif not isinstance(value, PersistentObject):
            try:
                value = plain(value)
            except ValueError:
                continue        # metadata too large to keep; the networks load without it
            if _jsonable(value):
                meta[str(key)] = value
    if not nets:
        keys = ", ".join(sorted(map(str, data))[:8]) or "none"
        raise ValueError(f"a pickle of a dict, but not a network snapshot: no G, D or G_ema network (keys: {keys})")
    # A snapshot from stylegan2-ada-pytorch nests its generators' settings; its discriminator then
    # follows that code's defaults too.
    ada = any(is_ada_form(spec.arch, spec.kwargs) for spec in nets.values())
    for spec in nets.values():
        spec.kwargs = canonical_kwargs(spec.arch, spec.kwargs, ada=ada)
    return nets, meta


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
