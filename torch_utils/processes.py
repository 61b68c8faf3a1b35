"""Process liveness, for reclaiming what a killed process left behind (build locks, temp files)."""
from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
