"""The one error type every loader raises: a one-line message naming the model and the reason."""
from __future__ import annotations

import os


class LoadError(ValueError):
    """`source: reason` on one line; `source` is kept as given (a URL stays a URL)."""

    def __init__(self, source, reason: str):
        self.source = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
        self.path = self.source   # the former name of the attribute
        self.reason = " ".join(str(reason).split()) or "unreadable"
        super().__init__(f"{self.source}: {self.reason}" if self.source else self.reason)
