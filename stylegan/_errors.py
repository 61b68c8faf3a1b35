"""Error text shared by every reader: files fail in many ways, the user gets one line."""
from __future__ import annotations

import os
import re


class FileError(ValueError):
    """A file the toolkit cannot use: `path: reason` on one line, both kept for callers that name
    the file their own way (a model by the name the user gave)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = os.fspath(path), reason
        super().__init__(f"{self.path}: {reason}")


_NAMED = re.compile(r"\{(\w+)(?:=([^{}]*))?\}")


class ParamError(ValueError):
    """A bad argument, named. The message writes each argument it speaks of as `{name}` or
    `{name=value}` and `params` lists them, the one at fault first (`param`). str() spells them as
    Python does (`overwrite=True`); a front end says them in its own words with `say`, e.g. the
    command line's flags (`--overwrite`), without rewriting text."""

    def __init__(self, message: str, *params: str):
        assert params, "a ParamError names its parameter"
        self.template, self.params = message, params
        super().__init__(self.say(lambda name, value: name if value is None else f"{name}={value}"))

    @property
    def param(self) -> str:
        return self.params[0]

    def say(self, spell) -> str:
        """The message with each named argument as `spell(name, value or None)` gives it."""
        return _NAMED.sub(lambda m: spell(m[1], m[2]) if m[1] in self.params else m[0], self.template)


class ParamExistsError(ParamError, FileExistsError):
    """An output exists and is kept: the message names the argument that replaces it (overwrite)."""


def exists_error(path: str | os.PathLike) -> ParamExistsError:
    """An output that exists, which only `overwrite` replaces."""
    return ParamExistsError(f"{os.fspath(path)} exists: pass {{overwrite=True}} to replace it", "overwrite")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
