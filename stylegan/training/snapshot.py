"""Training snapshots: the toolkit's own model file (loaders/native.py: safetensors, no pickled code)
with one more section, `training`, holding what resuming needs beyond the networks.

A snapshot is therefore a network for every other command (`stylegan.load` reads its G, D and G_ema
and skips the section), and `stylegan train --resume` continues from it: the setup it was made with,
both optimisers' states, pl_mean, augment p, the image count, the data sampler's position, the random
generators' states and ADA's running averages. Written atomically: a reader (or a resume after
kill -9) sees the previous complete file or the new one, never half of one.

The section's JSON mirrors the state's nesting, with every tensor replaced by a reference into the
section's tensors; dict keys keep their type (optimiser states are keyed by parameter number)."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

import torch

from ..loaders import native

SECTION = "training"
VERSION = 1
PATTERN = re.compile(r"^network-snapshot-(\d+)\.stylegan$")


def snapshot_name(cur_nimg: int) -> str:
    """NVIDIA's naming, kimg in six digits: network-snapshot-000123.stylegan."""
    return f"network-snapshot-{cur_nimg // 1000:06d}.stylegan"


def save_snapshot(path: str | os.PathLike, networks: dict[str, torch.nn.Module], state: dict,
                  metadata: Optional[dict] = None) -> Path:
    """Write G, D, G_ema (eval copies need not be made: tensors are copied out) and the training state."""
    tensors: dict[str, torch.Tensor] = {}
    info = {"version": VERSION, "state": _encode(state, tensors)}
    nets = {k: v for k, v in networks.items() if v is not None}
    return native.save({**nets, **(metadata or {})}, path, overwrite=True, sections={SECTION: (info, tensors)})


def read_state(path: str | os.PathLike) -> Optional[dict]:
    """The training state of a snapshot, or None for a model file without one."""
    found = native.read_section(path, SECTION)
    if found is None:
        return None
    info, tensors = found
    if not isinstance(info, dict) or int(info.get("version", 0)) > VERSION:
        raise ValueError("written by a newer version of stylegan (training snapshot format): upgrade stylegan")
    return _decode(info["state"], tensors)


def is_snapshot(path: str | os.PathLike) -> bool:
    """Whether `path` is a file holding a training state (cheap: reads the header only)."""
    from ..io.tagged import read_tags
    try:
        header = read_tags(path)
    except Exception:                   # not a safetensors file at all
        return False
    return native.is_native(header) and SECTION in header


def latest_snapshot(run_dir: str | os.PathLike) -> Optional[Path]:
    """The newest complete snapshot in a run folder (highest image count), or None."""
    found = []
    for p in Path(run_dir).iterdir():
        m = PATTERN.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p.stat().st_mtime_ns, p))
    return max(found)[2] if found else None


# ----------------------------------------------------------------------------------------------


def _encode(obj: Any, tensors: dict, path: str = "s") -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj
        return {"tensor": path}
    if isinstance(obj, dict):
        return {"dict": [[_key(k), _encode(v, tensors, f"{path}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"list": [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"cannot store a {type(obj).__name__} in a snapshot ({path})")


def _key(k: Any) -> list:
    if isinstance(k, bool) or not isinstance(k, (int, str)):
        raise TypeError(f"snapshot state keys must be int or str, not {type(k).__name__}")
    return ["int", k] if isinstance(k, int) else ["str", k]


def _decode(obj: Any, tensors: dict) -> Any:
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ValueError("corrupt training section in the snapshot")
    (kind, value), = obj.items()
    if kind == "tensor":
        if value not in tensors:
            raise ValueError(f"corrupt training section in the snapshot (no tensor {value})")
        return tensors[value]
    if kind == "dict":
        return {(int(k) if t == "int" else str(k)): _decode(v, tensors) for (t, k), v in value}
    if kind == "list":
        return [_decode(v, tensors) for v in value]
    if kind == "value":
        return value
    raise ValueError(f"corrupt training section in the snapshot (entry kind {kind!r})")
