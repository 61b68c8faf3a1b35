"""Per-page state: each page opens its own session, with its own temporary folder.

Two pages (two browsers, or two tabs) never see each other's uploads, projections or jobs. The
server writes files only inside a session's folder (uploaded photos and direction files, latents
on their way to a download), under one temporary root removed when the server stops; sessions
idle for longer than `idle_s` are closed and their folders removed."""
from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .jobs import Job
from .photo import Projected


@dataclass
class Upload:
    path: Path          # inside the session's folder
    filename: str       # as the user's browser named it: what commands show


@dataclass
class Session:
    id: str
    folder: Path
    last_seen: float = field(default_factory=time.monotonic)
    directions: dict[str, Upload] = field(default_factory=dict)     # 'upload:N' -> the file
    direction_caches: dict[str, dict] = field(default_factory=dict) # network -> resolve_direction's cache
    photo: np.ndarray | None = None
    photo_name: str = ""
    photo_digest: str = ""                                          # sha256 of the uploaded file
    faces: list = field(default_factory=list)                       # AlignedFace thumbnails, largest first
    projected: Projected | None = None
    job: Job | None = None
    _names: int = 0

    def file(self, filename: str) -> Path:
        """A new path in the session's folder for an upload called `filename` (kept only as a suffix)."""
        self._names += 1
        suffix = "".join(Path(filename).suffixes[-2:])
        suffix = suffix if re.fullmatch(r"(\.[A-Za-z0-9_+-]{1,16}){0,2}", suffix) else ""
        return self.folder / f"upload{self._names}{suffix}"

    def cache(self, network: str) -> dict:
        return self.direction_caches.setdefault(network, {})


class Sessions:
    def __init__(self, root: Path | None = None, idle_s: float = 3 * 3600, max_sessions: int = 64):
        self.root = Path(tempfile.mkdtemp(prefix="stylegan-serve-", dir=root))
        self.idle_s, self.max_sessions = idle_s, max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self) -> Session:
        self.expire()
        with self._lock:
            while len(self._sessions) >= self.max_sessions:     # the least recently seen makes room
                self._close(min(self._sessions.values(), key=lambda s: s.last_seen))
            sid = secrets.token_urlsafe(16)
            folder = self.root / sid
            folder.mkdir()
            session = self._sessions[sid] = Session(sid, folder)
        return session

    def get(self, sid: str | None) -> Session | None:
        with self._lock:
            session = self._sessions.get(sid or "")
            if session is not None:
                session.last_seen = time.monotonic()
            return session

    def __len__(self) -> int:
        return len(self._sessions)

    def expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            for session in [s for s in self._sessions.values() if now - s.last_seen > self.idle_s]:
                self._close(session)

    def close(self) -> None:
        with self._lock:
            for session in list(self._sessions.values()):
                self._close(session)
        shutil.rmtree(self.root, ignore_errors=True)

    def _close(self, session: Session) -> None:
        if session.job is not None:
            session.job.cancel()
        self._sessions.pop(session.id, None)
        shutil.rmtree(session.folder, ignore_errors=True)
