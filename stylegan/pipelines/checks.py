"""Argument checks shared by every pipeline entry point: one wording, one place."""
from __future__ import annotations

import math

from .._errors import ParamError


def check_psi(psi: float, truncation_cutoff: int | None = None, num_ws: int | None = None) -> float:
    """Truncation psi must be a finite number (nan or inf would silently give blank images)."""
    try:
        value = float(psi)
    except (TypeError, ValueError):
        raise ParamError(f"truncation {{psi}} must be a number, got {psi!r}", "psi") from None
    if not math.isfinite(value):
        raise ParamError(f"truncation {{psi}} must be a finite number, got {psi}", "psi")
    if truncation_cutoff is not None:
        if truncation_cutoff < 0 or (num_ws is not None and truncation_cutoff > num_ws):
            top = f"0..{num_ws}" if num_ws is not None else "0 or more"
            raise ParamError(f"{{truncation_cutoff={truncation_cutoff}}} out of range: expected {top}",
                             "truncation_cutoff")
    return value


def check_batch_size(batch_size: int) -> int:
    if batch_size < 1:
        raise ParamError(f"{{batch_size}} must be at least 1, got {batch_size}", "batch_size")
    return batch_size


NOISE_MODES = ("const", "random", "none")


def check_noise_mode(noise_mode: str) -> str:
    if noise_mode not in NOISE_MODES:
        raise ParamError(f"unknown {{noise_mode}} {noise_mode!r}: expected {', '.join(NOISE_MODES)}", "noise_mode")
    return noise_mode
