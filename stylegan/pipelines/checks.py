"""Argument checks shared by every pipeline entry point: one wording, one place."""
from __future__ import annotations

import math


def check_psi(psi: float, truncation_cutoff: int | None = None, num_ws: int | None = None) -> float:
    """Truncation psi must be a finite number (nan or inf would silently give blank images)."""
    try:
        value = float(psi)
    except (TypeError, ValueError):
        raise ValueError(f"truncation psi must be a number, got {psi!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"truncation psi must be a finite number, got {psi}")
    if truncation_cutoff is not None:
        if truncation_cutoff < 0 or (num_ws is not None and truncation_cutoff > num_ws):
            top = f"0..{num_ws}" if num_ws is not None else "0 or more"
            raise ValueError(f"truncation_cutoff {truncation_cutoff} out of range: expected {top}")
    return value


NOISE_MODES = ("const", "random", "none")


def check_noise_mode(noise_mode: str) -> str:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"unknown noise mode {noise_mode!r}: expected {', '.join(NOISE_MODES)}")
    return noise_mode
