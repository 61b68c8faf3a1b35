"""NVIDIA network pickles (stylegan2-ada-pytorch, stylegan3) -> our modules.

A snapshot is a dict of persistent objects ('G', 'D', 'G_ema', 'augment_pipe') plus plain data
('training_set_kwargs'). Each object records its class name, constructor kwargs and module state;
we rebuild the state dict from the state and the network from the kwargs."""
from __future__ import annotations

import collections
import json
from typing import Any

import torch

from .safe_pickle import PersistentObject
from .spec import NetSpec

NETWORK_KEYS = ("G", "D", "G_ema")


def plain(obj: Any) -> Any:
    """EasyDicts, OrderedDicts, tuples and numpy scalars -> JSON-able Python values."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    return obj


def state_dict(obj: PersistentObject, prefix: str = "", out: dict | None = None) -> dict[str, torch.Tensor]:
    """Parameters, then persistent buffers, then submodules: torch's own state_dict order."""
    out = collections.OrderedDict() if out is None else out
    st = obj.state
    skip = set(st.get("_non_persistent_buffers_set") or ())
    for name, t in (st.get("_parameters") or {}).items():
        if t is not None:
            out[prefix + name] = t
    for name, t in (st.get("_buffers") or {}).items():
        if t is not None and name not in skip:
            out[prefix + name] = t
    for name, m in (st.get("_modules") or {}).items():
        if isinstance(m, PersistentObject):
            state_dict(m, f"{prefix}{name}.", out)
        elif m is not None:
            raise ValueError(f"submodule {prefix}{name} is not a network module")
    return out


def submodules(obj: PersistentObject) -> dict:
    return obj.state.get("_modules") or {}


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
        elif not isinstance(value, PersistentObject) and _jsonable(plain(value)):
            meta[key] = plain(value)
    if not nets:
        raise ValueError("the pickle holds no G, D or G_ema network")
    return nets, meta


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False
