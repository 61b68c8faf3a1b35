"""The toolkit's own format: a safetensors file, tensors plus a JSON header, no pickled code.

Tensors are stored as `<network>.<parameter>`; the header records each network's architecture and
constructor kwargs, and JSON metadata such as `training_set_kwargs`."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .spec import NetSpec

FORMAT_TAG = "stylegan"
VERSION = 1
NETWORK_KEYS = ("G", "D", "G_ema")


def save(nets: dict, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write networks (and JSON-able metadata entries) of `nets` to `path`, atomically."""
    from safetensors.torch import save_file
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: pass overwrite=True to replace it")
    tensors, networks, meta = {}, {}, {}
    for key, value in nets.items():
        if isinstance(value, torch.nn.Module):
            if not hasattr(value, "arch") or not hasattr(value, "init_kwargs"):
                raise ValueError(f"{key} was not built by stylegan.create_model, so it cannot be saved")
            networks[key] = {"arch": value.arch, "kwargs": value.init_kwargs}
            for name, t in value.state_dict().items():
                tensors[f"{key}.{name}"] = t.detach().cpu().contiguous().clone()
        elif key != "format":
            meta[key] = value
    if not networks:
        raise ValueError("nothing to save: no networks given")
    header = {"format": FORMAT_TAG, "version": str(VERSION), "networks": json.dumps(networks),
              "metadata": json.dumps(meta)}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        save_file(tensors, tmp, metadata=header)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def is_native(header: dict | None) -> bool:
    return bool(header) and header.get("format") == FORMAT_TAG


def read(path: str | os.PathLike) -> tuple[dict[str, NetSpec], dict]:
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        if not is_native(header):
            raise ValueError("a safetensors file, but not one written by stylegan.save")
        if int(header.get("version", 0)) > VERSION:
            raise ValueError(f"written by a newer stylegan (format version {header['version']})")
        networks = json.loads(header["networks"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    specs = {}
    for key, info in networks.items():
        prefix = key + "."
        sd = {k[len(prefix):]: t for k, t in tensors.items() if k.startswith(prefix)}
        specs[key] = NetSpec(info["arch"], info["kwargs"], sd)
    return specs, json.loads(header.get("metadata", "{}"))
