"""How much one call may hold in memory at once, checked before the work starts.

Number options (strengths, frames, grid cells, projection steps) decide how much is held at once.
Each story computes that size from its arguments before allocating anything and refuses, in one
line, past a budget: 4 GiB, or STYLEGAN_MEMORY_BUDGET (bytes, or with a K/M/G suffix: '16G').
Where a format allows it, frames are streamed instead, and cost nothing here."""
from __future__ import annotations

import os
import re

from ._errors import ParamError

DEFAULT_BUDGET = 4 << 30


def memory_budget() -> int:
    """The budget in bytes: STYLEGAN_MEMORY_BUDGET when set, else 4 GiB."""
    text = os.environ.get("STYLEGAN_MEMORY_BUDGET", "").strip()
    if not text:
        return DEFAULT_BUDGET
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, re.IGNORECASE)
    if m is None:
        raise ValueError(f"STYLEGAN_MEMORY_BUDGET={text!r}: expected bytes, e.g. 8G or 8589934592")
    scale = 1 << (10 * " KMGT".index((m.group(2) or " ").upper()))
    return int(float(m.group(1)) * scale)


def gib(nbytes: float) -> str:
    return f"{nbytes / (1 << 30):.1f} GiB"


def check_held(nbytes: int, what: str, fix: str, *params: str) -> None:
    """Refuse (ValueError, one line) holding `nbytes` at once for `what`; `fix` says what to change,
    naming the arguments `params` as `{name}` (a ParamError, see _errors)."""
    budget = memory_budget()
    if nbytes > budget:
        message = (f"{what} would hold {gib(nbytes)} in memory at once, past the {gib(budget)} budget: "
                   f"{fix} (or raise STYLEGAN_MEMORY_BUDGET)")
        raise ParamError(message, *params) if params else ValueError(message)
