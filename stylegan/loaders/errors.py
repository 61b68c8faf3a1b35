"""The one error type every loader raises: a one-line message naming the file and the reason."""
from __future__ import annotations


class LoadError(ValueError):
    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")
