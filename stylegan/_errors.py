"""Error text shared by every reader: files fail in many ways, the user gets one line."""
from __future__ import annotations

import os


class FileError(ValueError):
    """A file the toolkit cannot use: `path: reason` on one line, both kept for callers that name
    the file their own way (a model by the name the user gave)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = os.fspath(path), reason
        super().__init__(f"{self.path}: {reason}")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
