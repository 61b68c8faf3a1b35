"""`load(source)`: any model file people have -> our modules; `save(nets, path)`: our own format.

Formats are told apart by content, not by file name: a zip holding a pickled torch.save checkpoint
(rosinality), a pickle (an NVIDIA or TF-era network pickle, read with a restricted unpickler), or a
safetensors file with our tag (the toolkit's own format). Nothing in a model file is ever executed,
and no file can make the loader allocate much more memory than the file holds (limits.py). Every
failure is a LoadError naming the model and the reason in one line."""
from __future__ import annotations

import os
import pickle
import struct
import zipfile
from pathlib import Path

import torch

from .. import hub
from .._errors import FileError, first_line, weights_only_refusal
from ..networks import create_model, is_architecture, list_archs
from . import native, nvidia, rosinality, tf
from .errors import LoadError
from .limits import AllocationLimitError, Budget, allocation_limit, check_settings
from .names import untrained as _untrained
from .result import NETWORK_KEYS, LoadedModel
from .safe_pickle import UnsafePickleError, safe_load
from .spec import NetSpec

__all__ = ["load", "load_generator", "save", "LoadError", "LoadedModel", "detect_format"]

FORMAT_NAMES = {"nvidia-pickle": "NVIDIA network pickle", "tf-pickle": "TF-era StyleGAN2 pickle",
                "rosinality": "rosinality checkpoint", "stylegan": "stylegan file",
                "untrained": "an architecture with random weights"}
EXPECTED = "expected an NVIDIA or TF-era network pickle, a rosinality .pt checkpoint or a .stylegan file"

# What other files start with, to say what was given instead of a model.
_MAGIC = [(b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
          (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"\x93NUMPY", "a numpy .npy array"),
          (b"\x1f\x8b", "a gzip file"), (b"\x89HDF\r\n\x1a\n", "an HDF5 file"), (b"%PDF", "a PDF document"),
          (b"\x7fELF", "a program (ELF)"), (b"BZh", "a bzip2 file"), (b"\xfd7zXZ", "an xz file"),
          (b"7z\xbc\xaf", "a 7-zip archive")]


def detect_format(path: Path) -> str:
    """'zip' (a torch checkpoint) | 'pickle' | 'safetensors', from the content; otherwise a ValueError
    saying what the file is instead."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        raise ValueError("empty file")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(path)
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 8 + n <= size:
            return "safetensors"
        if n < 100 << 20:
            raise ValueError(f"truncated or corrupt stylegan file (its header runs past the end of the file)")
    raise ValueError(f"{_what_is(head)}, not a model file ({EXPECTED})")


def _what_is(head: bytes) -> str:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[4:8] == b"ftyp":
        return "a video (MP4/MOV)"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "a tar archive"
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8").lstrip()
        except UnicodeDecodeError:
            text = None
        if text is not None:
            return "a JSON file" if text[:1] in ("{", "[") else "a text file"
    return "a file of unknown format"


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ValueError(f"truncated or corrupt checkpoint (zip: {first_line(e)})") from None
    if names and all(n.endswith(".npy") for n in names):
        return _not_a_model("a numpy .npz archive")
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
            return _not_a_model("a TorchScript module")
        return "zip"
    return _not_a_model(f"a zip archive of {len(names)} file{'s' * (len(names) != 1)}")


def _not_a_model(what: str) -> str:
    raise ValueError(f"{what}, not a model file ({EXPECTED})")


def _read_pickle(path: Path, budget: Budget) -> tuple[str, dict[str, NetSpec], dict]:
    with open(path, "rb") as f:
        try:
            obj = safe_load(f, budget)
        except (UnsafePickleError, AllocationLimitError):
            raise
        except Exception as e:  # truncation and corruption surface as many different errors
            raise ValueError(f"truncated or corrupt pickle ({type(e).__name__}: {first_line(e)})") from None
    if isinstance(obj, tuple):
        return "tf-pickle", tf.convert(obj), {}
    if isinstance(obj, dict):
        specs, meta = nvidia.convert(obj)
        return "nvidia-pickle", specs, meta
    raise ValueError(f"a pickle, but not a network snapshot (top level is a {type(obj).__name__})")


def _read_zip(path: Path, budget: Budget) -> tuple[str, dict[str, NetSpec], dict]:
    try:
        ckpt = rosinality.read_checkpoint(path, budget)
    except ValueError:
        raise
    except pickle.UnpicklingError as e:
        refusal = weights_only_refusal(e)
        if refusal is not None:
            raise UnsafePickleError(f"{refusal} in a torch checkpoint") from None
        raise ValueError(f"truncated or corrupt checkpoint ({first_line(e)})") from None
    except Exception as e:  # zip, storage and pickle damage all surface differently
        raise ValueError(f"truncated or corrupt checkpoint ({type(e).__name__}: {first_line(e)})") from None
    return "rosinality", rosinality.convert(ckpt), {}


def build(spec: NetSpec, device: torch.device | str = "cpu", budget: Budget | None = None,
          trainable: bool = False) -> torch.nn.Module:
    """Construct and fill one network. With a budget, construction may not allocate past it."""
    if spec.arch not in list_archs():
        raise ValueError(f"unsupported architecture {spec.arch!r}")
    check_settings(spec.kwargs)
    with allocation_limit(budget):
        try:
            module = create_model(spec.arch, **spec.kwargs)
        except AllocationLimitError:
            raise
        except (TypeError, AssertionError, KeyError, ValueError, ZeroDivisionError, OverflowError, RuntimeError) as e:
            raise ValueError(f"unsupported settings for a {spec.arch} network ({type(e).__name__}: "
                             f"{first_line(e)})") from None
        tensors = dict(spec.tensors(module) if callable(spec.tensors) else spec.tensors)
        _check_fit(spec.arch, module, tensors)
        module.load_state_dict(tensors, strict=True)
    if spec.post is not None:
        spec.post(module)
    return module.train(trainable).requires_grad_(trainable).to(device)


def _check_fit(arch: str, module: torch.nn.Module, tensors: dict) -> None:
    """Say which tensors are missing, unexpected or of the wrong shape, before torch does at length."""
    want = module.state_dict()
    problems = [f"lacks {k}" for k in want if k not in tensors]
    problems += [f"has an unexpected {k}" for k in tensors if k not in want]
    problems += [f"has {k} of shape {list(tensors[k].shape)} where {list(want[k].shape)} is expected"
                 for k in want if k in tensors and (not isinstance(tensors[k], torch.Tensor)
                                                    or tensors[k].shape != want[k].shape)]
    if problems:
        more = f" (and {len(problems) - 2} more problems)" if len(problems) > 2 else ""
        raise ValueError(f"its tensors do not fit a {arch} network: it {'; it '.join(problems[:2])}{more}")


def load(source: str | os.PathLike, device: torch.device | str = "cpu", *, trainable: bool = False,
         untrained: bool = False) -> LoadedModel:
    """Read a model: its networks (G, D, G_ema, whichever it holds), format and metadata.

    `source` is a file path, an http(s) URL or a model-zoo name (downloaded once into the cache).
    Networks come back in eval mode with gradients off; `trainable=True` gives them in train mode
    with gradients on (for fine-tuning). With `untrained=True` an architecture or config name
    (`stylegan.list_configs()`) that is not a file gives that network with random weights, the same
    every time (format 'untrained'); without, it is refused. Raises LoadError (a ValueError) with a
    one-line message."""
    text = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    if text is None:
        raise LoadError(repr(source), f"not a path, URL or model name (a {type(source).__name__})")
    if not text.strip():
        raise LoadError("", "no model given (an empty path or name)")
    path = Path(text)
    if is_architecture(text) and not path.exists():
        if not untrained:
            raise LoadError(text, f"an architecture without weights (create_model builds it), not a file or a "
                                  f"known model{hub.suggestion(text)} (`stylegan models` lists them)")
        try:
            return _untrained(text, device, trainable)
        except ValueError as e:
            raise LoadError(text, str(e)) from None
    try:
        if not path.is_file():
            path = _resolve(text)
        _check_file(path)
        budget = Budget(path.stat().st_size)
        kind = detect_format(path)
        if kind == "pickle":
            fmt, specs, meta = _read_pickle(path, budget)
        elif kind == "zip":
            fmt, specs, meta = _read_zip(path, budget)
        else:
            specs, meta = native.read(path)
            fmt = "stylegan"
        construction = Budget(budget.file_bytes)
        nets = {key: build(spec, device, construction, trainable) for key, spec in specs.items()}
    except LoadError:
        raise
    except FileError as e:      # named by its path; the user knows it by `text` (a model name, a URL)
        raise LoadError(text, e.reason) from None
    except UnsafePickleError as e:
        raise LoadError(text, f"unsafe pickle: {e}") from None
    except ValueError as e:
        raise LoadError(text, str(e)) from None
    except OSError as e:
        raise LoadError(text, _os_reason(e)) from None
    except MemoryError:
        raise LoadError(text, "not enough memory to load it") from None
    except RecursionError:
        raise LoadError(text, "nests too deeply to read") from None
    return LoadedModel(**nets, format=fmt, metadata=meta, source=text)


def _check_file(path: Path) -> None:
    """A folder, FIFO, device or socket is no model file (reading the last three blocks or never ends)."""
    from ..io.files import check_regular_file
    try:
        check_regular_file(path, "a model file")
    except ValueError as e:
        raise ValueError(str(e).removeprefix(f"{path}: ")) from None   # LoadError names the source


def load_generator(source: str | os.PathLike, device: torch.device | str = "cpu", *,
                   trainable: bool = False) -> torch.nn.Module:
    """The generator to sample from (G_ema, else G) of a model `load` reads; a LoadError (one line)
    when the file holds none, e.g. a discriminator alone."""
    return load(source, device, trainable=trainable).generator


def _resolve(text: str) -> Path:
    """A URL or model name -> a local file (downloaded into the cache), via the hub."""
    try:
        return Path(hub.resolve(text))
    except (ValueError, OSError) as e:
        message = str(e) if not isinstance(e, OSError) or e.filename is None else _os_reason(e)
        if message.startswith(text + ":"):      # the hub names the source; LoadError will too
            message = message[len(text) + 1:]
        raise LoadError(text, _lower_first(message.strip())) from None


def _os_reason(e: OSError) -> str:
    """'[Errno 13] Permission denied: /x' -> 'permission denied' (the path is named once, by LoadError)."""
    return _lower_first(e.strerror or first_line(e))


def _lower_first(reason: str) -> str:
    # 'Connection refused' reads as a clause after 'source: '; acronyms ('HTTP 404') stay as they are.
    return reason[:1].lower() + reason[1:] if reason[:1].isupper() and reason[1:2].islower() else reason


def save(nets: LoadedModel | dict, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write networks and metadata in the toolkit's own format (see loaders/native.py).

    `nets` is what `load` returned, or a dict of networks (G, D, G_ema) and metadata entries."""
    return native.save(nets, path, overwrite=overwrite)
