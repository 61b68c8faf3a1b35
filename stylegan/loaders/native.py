"""The toolkit's own format: a safetensors file, tensors plus a JSON header, no pickled code.

Tensors are stored as `<network>.<parameter>`; the header records each network's architecture and
constructor kwargs, and JSON metadata such as `training_set_kwargs`. Version 1 files recorded
kwargs as given (NVIDIA's flat or nested StyleGAN2 form); version 2 records our canonical form."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..io.tagged import read_tagged, read_tags, write_tagged
from .kwargs import canonical_kwargs
from .result import NETWORK_KEYS, LoadedModel
from .spec import NetSpec

FORMAT_TAG = "stylegan"
VERSION = 2


def save(nets: LoadedModel | dict, path: str | os.PathLike, overwrite: bool = False, *,
         sections: dict[str, tuple[dict, dict[str, torch.Tensor]]] | None = None) -> Path:
    """Write networks and JSON-able metadata to `path`, atomically.

    `nets` is what `load` returned, or a dict of networks (G, D, G_ema) and metadata entries.
    `sections` adds named parts beside the networks, each a JSON-able header entry and tensors
    (stored as `<section>/<name>`); readers of networks skip them (`read_section` reads one)."""
    if isinstance(nets, LoadedModel):
        modules, meta = nets.networks(), dict(nets.metadata)
    else:
        modules = {k: v for k, v in nets.items() if isinstance(v, torch.nn.Module)}
        meta = {k: v for k, v in nets.items() if not isinstance(v, torch.nn.Module) and k != "format"}
    tensors, networks = {}, {}
    for key, module in modules.items():
        if key not in NETWORK_KEYS:
            raise ValueError(f"unknown network key {key!r}: expected one of {', '.join(NETWORK_KEYS)}")
        if not hasattr(module, "arch") or not hasattr(module, "init_kwargs"):
            raise ValueError(f"{key} was not built by stylegan.create_model, so it cannot be saved")
        networks[key] = {"arch": module.arch, "kwargs": module.init_kwargs}
        for name, t in module.state_dict().items():
            tensors[f"{key}.{name}"] = t.detach().cpu().contiguous().clone()
    if not networks:
        raise ValueError("nothing to save: no networks given")
    try:
        tags = {"networks": json.dumps(networks), "metadata": json.dumps(meta)}
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata is not JSON-able ({e})") from None
    for section, (info, extra) in (sections or {}).items():
        assert section not in NETWORK_KEYS and section not in tags and "." not in section, section
        assert section not in ("format", "version"), section
        try:
            tags[section] = json.dumps(info)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{section} is not JSON-able ({e})") from None
        tensors.update({f"{section}/{k}": t.detach().cpu().contiguous().clone() for k, t in extra.items()})
    return write_tagged(path, tensors, tags, format=FORMAT_TAG, version=VERSION, overwrite=overwrite)


def read_section(path: str | os.PathLike, section: str) -> tuple[dict, dict[str, torch.Tensor]] | None:
    """A section written by `save(..., sections=...)`: (its header entry, its tensors), or None."""
    tags = read_tags(path)
    if not is_native(tags) or section not in tags:
        return None
    prefix = section + "/"
    file = read_tagged(path, format=FORMAT_TAG, version=VERSION, what="stylegan file",
                       keep=lambda k: k.startswith(prefix))
    return _json(file.tags, section), {k[len(prefix):]: t for k, t in file.tensors.items()}


def is_native(header: dict | None) -> bool:
    return bool(header) and header.get("format") == FORMAT_TAG


def read(path: str | os.PathLike) -> tuple[dict[str, NetSpec], dict]:
    """The networks' specs and the metadata of a file `save` wrote (any version up to VERSION)."""
    # Tensors of other sections (a training snapshot's state) are not networks: left on disk.
    file = read_tagged(path, format=FORMAT_TAG, version=VERSION, what="stylegan file", keep=lambda k: "/" not in k)
    version, tensors = file.version, file.tensors
    networks, meta = _json(file.tags, "networks"), _json(file.tags, "metadata", "{}")
    if not isinstance(networks, dict) or not networks or not isinstance(meta, dict):
        raise ValueError("corrupt stylegan file header (networks or metadata malformed)")
    specs = {}
    for key, info in networks.items():
        if key not in NETWORK_KEYS or not isinstance(info, dict) or not isinstance(info.get("arch"), str):
            raise ValueError(f"corrupt stylegan file header (network entry {key!r})")
        prefix = key + "."
        sd = {k[len(prefix):]: t for k, t in tensors.items() if k.startswith(prefix)}
        # Version 1 kept NVIDIA's forms; its discriminators were built with our defaults.
        ada = None if version < 2 and info["arch"] != "stylegan2_discriminator" else False
        specs[key] = NetSpec(info["arch"], canonical_kwargs(info["arch"], info.get("kwargs", {}), ada=ada), sd)
    return specs, meta


def _json(header: dict, key: str, default: str | None = None):
    text = header.get(key, default)
    if text is None:
        raise ValueError(f"corrupt stylegan file header (no {key!r} entry)")
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(f"corrupt stylegan file header ({key}: {e})") from None
