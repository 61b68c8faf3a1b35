"""Atomic file output shared by every writer in the toolkit (images, w vectors, videos, downloads).

A file is written under a hidden temporary name beside its target and renamed over it only when
complete, so a reader never sees half a file and a resumed run never mistakes a truncated file for
a finished one. The temporary name records its owner (host and PID): a process killed outright
(SIGKILL, OOM, a lost node) cannot clean up after itself, so the next writer in that folder removes
the temporaries whose owner is gone."""
from __future__ import annotations

import os
import re
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from torch_utils.processes import pid_alive

# Owners on other hosts (a shared file system under multi-node torchrun) cannot be asked whether
# they are alive; their temporaries count as abandoned only once this old.
FOREIGN_STALE_S = 24 * 3600.0

_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname().split(".")[0]) or "host"
_TEMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.tmp(\.[^.]*)?$")


def temp_path(path: Path) -> Path:
    """`dir/name.ext` -> `dir/.name.<host>-<pid>.tmp.ext` (the extension kept last for encoders that read it)."""
    return path.with_name(f".{path.stem}.{_HOST}-{os.getpid()}.tmp{path.suffix}")


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on any error (Ctrl-C included) it is removed."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sweep_stale_temps(folder: str | os.PathLike) -> int:
    """Remove temporaries in `folder` left by writers that died; returns how many were removed."""
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    now = time.time()
    for p in entries:
        m = _TEMP.match(p.name)
        if m is None:
            continue
        try:
            if m["host"] == _HOST:
                stale = not pid_alive(int(m["pid"]))
            else:
                stale = now - p.stat().st_mtime > FOREIGN_STALE_S
            if stale:
                p.unlink()
                removed += 1
        except OSError:
            pass  # gone already, or not ours to remove
    return removed


def ensure_writable_dir(folder: str | os.PathLike) -> Path:
    """Create `folder` (and parents) and check that files can be written in it, before any work.

    Raises ValueError with one line: a path under a file, a read-only or virtual file system
    (/proc), a permission problem."""
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{folder}: {parent} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{folder}: cannot create the folder ({e.strerror or e})") from None
    probe = temp_path(folder / "write-probe")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{folder}: cannot write files there ({e.strerror or e})") from None
    return folder
