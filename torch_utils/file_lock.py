"""An exclusive lock file that works on a home folder shared across nodes and containers.

The lock file holds its owner's record (host, PID namespace, PID) and its modification time is the
owner's heartbeat, refreshed while it holds the lock. A waiter takes over a lock whose owner is
provably dead (same host and namespace, PID gone) at once, and any other lock only after its
heartbeat has been silent for `stale_after` seconds of the waiter's own clock (so clock skew between
nodes does not matter). The lock only saves duplicate work: what it guards must stay correct when
two holders overlap (each builder writes its own folder and publishes it by an atomic rename).
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time

from .processes import owner_gone, owner_record

HEARTBEAT_S = 5.0
STALE_AFTER_S = 90.0  # beyond NFS's default attribute caching (60 s) plus a few heartbeats


def _read(path: str) -> tuple[dict | None, tuple[int, int] | None]:
    """(owner record or None if unreadable, (inode, mtime_ns) or None if the file is gone). Opening the
    file revalidates its attributes on NFS (close-to-open), so the heartbeat seen is fresh."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, None
    try:
        st = os.fstat(fd)
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        record = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError):
        record = None
    return record if isinstance(record, dict) else None, (st.st_ino, st.st_mtime_ns)


def describe(record: dict | None) -> str:
    if not record:
        return "an unknown process"
    return f"PID {record.get('pid')} on {record.get('host')}"


@contextlib.contextmanager
def exclusive(path: str, timeout: float = 600.0, poll: float = 0.5, stale_after: float | None = None,
              heartbeat: float | None = None):
    """Hold the lock file `path` for the block; TimeoutError after `timeout` s of waiting on a live owner.
    `stale_after` and `heartbeat` default to the module's STALE_AFTER_S and HEARTBEAT_S."""
    stale_after = STALE_AFTER_S if stale_after is None else stale_after
    heartbeat = HEARTBEAT_S if heartbeat is None else heartbeat
    mine = dict(owner_record(), token=os.urandom(8).hex())
    deadline = time.monotonic() + timeout
    seen, seen_at = None, 0.0
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            record, sig = _read(path)
            if sig is None:
                continue  # released meanwhile: try again at once
            now = time.monotonic()
            if sig != seen:
                seen, seen_at = sig, now
            if owner_gone(record) or now - seen_at > stale_after:
                _remove_if_unchanged(path, sig)
                continue
            if now > deadline:
                raise TimeoutError(f"lock {path} still held by {describe(record)} after {timeout:.0f} s; "
                                   f"if no build is running there, delete it") from None
            time.sleep(poll)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        break
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(path, mine, stop, heartbeat), daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        if _read(path)[0] == mine:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _beat(path: str, mine: dict, stop: threading.Event, every: float) -> None:
    """Refresh the lock's mtime while it is still ours (a waiter may have judged it stale and taken it)."""
    while not stop.wait(every):
        if _read(path)[0] != mine:
            return
        with contextlib.suppress(OSError):
            os.utime(path)


def _remove_if_unchanged(path: str, sig: tuple[int, int]) -> None:
    """Remove a stale lock unless it changed since it was judged (then it is someone's fresh one)."""
    if _read(path)[1] == sig:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
