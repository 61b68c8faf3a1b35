"""Tagged safetensors: the container of the toolkit's own files (models, latents, directions).

A file is safetensors' tensors plus its string metadata, two entries of which belong to the
container: `format` (what the file is: 'stylegan', 'stylegan-latent', 'stylegan-direction') and
`version` (an integer a format raises when its layout changes; files from before the field count
as version 1). Each format keeps its own tags and checks; this module writes atomically and reads
back with the format and the version guarded, so a file of another kind, or of a version newer than
this code knows, is refused in one line naming the file (`FileError`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .._errors import FileError, exists_error, first_line
from .files import atomic_output


@dataclass
class Tagged:
    tensors: dict[str, torch.Tensor]
    tags: dict[str, str]         # every metadata entry, `format` and `version` included
    version: int


def write_tagged(path: str | os.PathLike, tensors: dict[str, torch.Tensor], tags: dict[str, str], *,
                 format: str, version: int, overwrite: bool = False) -> Path:
    """Write `tensors` (stored contiguous, on the CPU) and string `tags` as a `format` file of
    `version`, atomically; an existing file is replaced only with `overwrite`."""
    from safetensors.torch import save_file
    path = Path(path)
    if path.exists() and not overwrite:
        raise exists_error(path)
    reserved = {"format", "version"} & set(tags)
    assert not reserved, f"tags {sorted(reserved)} belong to the container"
    bad = [k for k, v in tags.items() if not isinstance(v, str)]
    assert not bad, f"tags must be strings: {bad}"
    meta = {"format": format, "version": str(int(version)), **tags}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file({k: t.detach().cpu().contiguous() for k, t in tensors.items()}, tmp, metadata=meta)
    return path


def read_tags(path: str | os.PathLike) -> dict[str, str]:
    """A safetensors file's metadata alone (the tensors stay on disk); {} when it has none."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except SafetensorError as e:
        raise FileError(path, f"truncated or corrupt safetensors file ({first_line(e)})") from None


def read_tagged(path: str | os.PathLike, *, format: str, version: int, what: str,
                keep: Callable[[str], bool] | None = None) -> Tagged:
    """Read a `format` file of at most `version`: its tags, and the tensors whose names `keep`
    accepts (default all; the others are never read from disk). `what` names the format in errors
    ('stylegan file', 'latent file'). Raises FileError (a ValueError, `path: reason` on one line)
    for a file of another format or none, a newer or unreadable version, or damage."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            tags = dict(f.metadata() or {})
            got = check_tags(path, tags, format=format, version=version, what=what)
            tensors = {k: f.get_tensor(k) for k in f.keys() if keep is None or keep(k)}
    except SafetensorError as e:
        raise FileError(path, f"truncated or corrupt {what} ({first_line(e)})") from None
    return Tagged(tensors, tags, got)


def check_tags(path: str | os.PathLike, tags: dict[str, str], *, format: str, version: int, what: str) -> int:
    """The file's version, after checking its format tag and that this code reads that version."""
    if tags.get("format") != format:
        found = f"its format is {tags['format']!r}" if tags.get("format") else "it has no format tag"
        raise FileError(path, f"a safetensors file, but not a {what} ({found})")
    try:
        got = int(tags.get("version", "1"))
    except ValueError:
        raise FileError(path, f"corrupt {what} header (version {tags.get('version')!r})") from None
    if got > version:
        raise FileError(path, f"written by a newer version of stylegan ({what} format {got}, this version "
                              f"reads up to {version}): upgrade stylegan")
    return got
