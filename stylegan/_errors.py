"""Error text shared by every reader: files fail in many ways, the user gets one line."""
from __future__ import annotations

import re


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


class NetworkMismatchError(ValueError):
    """A file made for another network than the one it is used with."""


def other_network(what: str, recorded: str, actual: str) -> NetworkMismatchError:
    """'{what} made for another network (digest ...), not this one (...)': both digests' heads."""
    return NetworkMismatchError(f"{what} made for another network (digest {recorded[:12]}...), not this one "
                                f"({actual[:12]}...): pass force=True to apply it anyway")
