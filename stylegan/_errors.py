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


def without_prefix(e: Exception, prefix: str) -> ValueError:
    """`e` with `prefix` (the name of the item it is about, said beside it) taken off its message;
    a ParamError stays one, naming the same parameters."""
    if isinstance(e, ParamError):
        return ParamError(e.template.removeprefix(prefix), *e.params)
    return ValueError(str(e).removeprefix(prefix))


def with_prefix(e: Exception, prefix: str) -> Exception:
    """`e`, of its own type, with `prefix` (e.g. the file it is about) before its message."""
    if isinstance(e, ParamError):
        return type(e)(prefix + e.template, *e.params)
    return type(e)(prefix + str(e))


def exists_error(path: str | os.PathLike) -> ParamExistsError:
    """An output that exists, which only `overwrite` replaces."""
    return ParamExistsError(f"{os.fspath(path)} exists: pass {{overwrite=True}} to replace it", "overwrite")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def weights_only_refusal(e: BaseException) -> str | None:
    """What torch's weights-only loader refused, in our words ('refusing global builtins.print'), or
    None when `e` is no such refusal. Torch's own text advises turning the guard off; it is not repeated."""
    text = str(e)
    if "Weights only load failed" not in text and "weights_only" not in text:
        return None
    m = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if m:
        return f"refusing global {m.group(1)}"
    m = re.search(r"WeightsUnpickler error: ([^\n]*)", text)
    reason = m.group(1).strip().rstrip(".") if m else "it holds more than tensors"
    return f"refused by weights-only loading: {reason}"


def int_ranges(values) -> str:
    """Integers as ranges: [8, 9, ..., 99, 120] -> '8-99, 120'."""
    vs = sorted(set(int(v) for v in values))
    out, i = [], 0
    while i < len(vs):
        j = i
        while j + 1 < len(vs) and vs[j + 1] == vs[j] + 1:
            j += 1
        out.append(str(vs[i]) if i == j else f"{vs[i]}-{vs[j]}")
        i = j + 1
    return ", ".join(out)


class NetworkMismatchError(ParamError):
    """A file made for another network than the one it is used with."""


def other_network(what: str, recorded: str, actual: str) -> NetworkMismatchError:
    """'{what} made for another network (digest ...), not this one (...)': both digests' heads."""
    return NetworkMismatchError(f"{what} made for another network (digest {recorded[:12]}...), not this one "
                                f"({actual[:12]}...): pass {{force=True}} to apply it anyway", "force")
