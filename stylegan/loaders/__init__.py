"""`load(path)`: any model file people have -> our modules; `save(nets, path)`: our own format.

Formats are told apart by content, not by file name: a zip is a torch.save checkpoint
(rosinality), a pickle is an NVIDIA or TF-era network pickle (read with a restricted unpickler),
and a safetensors file with our tag is the toolkit's own format. Nothing in a model file is ever
executed. Every failure is a LoadError naming the file and the reason in one line."""
from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import torch

from ..networks import create_model
from . import native, nvidia, rosinality, tf
from .errors import LoadError
from .safe_pickle import UnsafePickleError, safe_load
from .spec import NetSpec

__all__ = ["load", "save", "LoadError", "detect_format"]

FORMAT_NAMES = {"nvidia-pickle": "NVIDIA network pickle", "tf-pickle": "TF-era StyleGAN2 pickle",
                "rosinality": "rosinality checkpoint", "stylegan": "stylegan file"}


def detect_format(path: Path) -> str:
    """'zip' | 'pickle' | 'safetensors', from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise ValueError("empty file")
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 8 + n <= path.stat().st_size:
            return "safetensors"
    raise ValueError("unknown format (not a network pickle, torch checkpoint or stylegan file)")


def _read_pickle(path: Path) -> tuple[str, dict[str, NetSpec], dict]:
    with open(path, "rb") as f:
        try:
            obj = safe_load(f)
        except UnsafePickleError:
            raise
        except Exception as e:  # truncation and corruption surface as many different errors
            raise ValueError(f"truncated or corrupt pickle ({type(e).__name__}: {e})") from None
    if isinstance(obj, tuple):
        return "tf-pickle", tf.convert(obj), {}
    if isinstance(obj, dict):
        specs, meta = nvidia.convert(obj)
        return "nvidia-pickle", specs, meta
    raise ValueError(f"a pickle, but not a network snapshot (top level is {type(obj).__name__})")


def _read_zip(path: Path) -> tuple[str, dict[str, NetSpec], dict]:
    try:
        ckpt = rosinality.read_checkpoint(path)
    except ValueError:
        raise
    except pickle.UnpicklingError as e:
        if "Unsupported global" in str(e) or "weights_only" in str(e).lower():
            raise UnsafePickleError(f"checkpoint refused by weights-only loading: {_first_line(e)}") from None
        raise ValueError(f"truncated or corrupt checkpoint ({_first_line(e)})") from None
    except Exception as e:  # zip, storage and pickle damage all surface differently
        raise ValueError(f"truncated or corrupt checkpoint ({type(e).__name__}: {_first_line(e)})") from None
    return "rosinality", rosinality.convert(ckpt), {}


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def build(spec: NetSpec, device: torch.device | str = "cpu") -> torch.nn.Module:
    try:
        module = create_model(spec.arch, **spec.kwargs)
    except (TypeError, AssertionError, KeyError) as e:
        raise ValueError(f"unsupported architecture ({spec.arch}: {e})") from None
    tensors = spec.tensors(module) if callable(spec.tensors) else spec.tensors
    try:
        module.load_state_dict(dict(tensors), strict=True)
    except RuntimeError as e:
        raise ValueError(f"tensors do not fit a {spec.arch} network ({str(e).splitlines()[0]} ...)") from None
    if spec.post is not None:
        spec.post(module)
    return module.eval().requires_grad_(False).to(device)


def load(source: str | os.PathLike, device: torch.device | str = "cpu") -> dict:
    """Read a model: {'G', 'D', 'G_ema' (whichever it holds), 'format', metadata...}.

    `source` is a file path, an http(s) URL or a model-zoo name (downloaded once into the cache)."""
    from .. import hub
    path = Path(source)
    try:
        if not path.exists() and (hub.is_url(str(source)) or hub.model_zoo.is_model_name(str(source))):
            path = hub.resolve(str(source))
        if not path.exists():
            raise ValueError("no such file")
        if path.is_dir():
            raise ValueError("is a folder, not a model file")
        kind = detect_format(path)
        if kind == "pickle":
            fmt, specs, meta = _read_pickle(path)
        elif kind == "zip":
            fmt, specs, meta = _read_zip(path)
        else:
            specs, meta = native.read(path)
            fmt = "stylegan"
        nets = {key: build(spec, device) for key, spec in specs.items()}
    except UnsafePickleError as e:
        raise LoadError(path, f"unsafe pickle: {e}") from None
    except (ValueError, OSError) as e:
        raise LoadError(path, str(e)) from None
    return {**nets, **meta, "format": fmt}


def save(nets: dict, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write networks and metadata in the toolkit's own format (see loaders/native.py)."""
    return native.save(nets, path, overwrite=overwrite)
