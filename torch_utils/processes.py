"""Process liveness, for reclaiming what a killed process left behind (build locks, temp files).

A PID means something only in its own PID namespace on its own host: a cache folder shared by the
nodes of a cluster, or by containers, holds records from processes this one cannot see. So a record
names its host and PID namespace too, and a process is judged dead only when it shares both and its
PID is gone; anything else needs another sign (a lock's heartbeat going silent)."""
from __future__ import annotations

import os
import socket


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def owner_record() -> dict:
    """Who this process is, for a lock or a temp folder: host, PID namespace and PID."""
    return {"host": socket.gethostname(), "pidns": _pid_namespace(), "pid": os.getpid()}


def owner_gone(record: dict | None) -> bool:
    """True only when the process a record names provably no longer runs: same host, same PID
    namespace, PID gone. A record from elsewhere (another node, another container) is never
    judged this way."""
    if not isinstance(record, dict):
        return False
    here = owner_record()
    if record.get("host") != here["host"] or record.get("pidns") != here["pidns"]:
        return False
    pid = record.get("pid")
    return isinstance(pid, int) and pid > 0 and not pid_alive(pid)
