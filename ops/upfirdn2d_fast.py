"""CPU-friendly upfirdn2d: same arithmetic as the reference, without multiplying by inserted zeros.

Placeholder: delegates to the reference until the polyphase/separable forms land."""
from __future__ import annotations

from .upfirdn2d import _upfirdn2d_ref


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    return _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
