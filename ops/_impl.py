"""Which implementation the user asked for: use_impl() in code, else STYLEGAN_OPS_IMPL.

The one place that reads the override; it imports nothing from the ops, so the build, the kernels
and the dispatch can all ask it without an import cycle."""
from __future__ import annotations

import contextlib
import contextvars
import os

IMPLS = ("ref", "fast", "cuda")
ENV_VAR = "STYLEGAN_OPS_IMPL"

# Per-thread/per-task override of 'auto' set by use_impl(); None means "not set".
_IMPL_OVERRIDE: contextvars.ContextVar[str | None] = contextvars.ContextVar("stylegan_ops_impl", default=None)


@contextlib.contextmanager
def use_impl(name: str):
    """Within the block, impl='auto' resolves to `name` (contextvar: each thread has its own)."""
    if name not in IMPLS:
        raise ValueError(f"unknown op implementation {name!r}; expected one of {IMPLS}")
    token = _IMPL_OVERRIDE.set(name)
    try:
        yield
    finally:
        _IMPL_OVERRIDE.reset(token)


def requested_impl() -> str | None:
    """The forced implementation ('ref' | 'fast' | 'cuda'), or None when 'auto' picks by device."""
    override = _IMPL_OVERRIDE.get()
    if override:
        return override
    env = os.environ.get(ENV_VAR) or None
    if env is not None and env not in IMPLS:
        raise ValueError(f"{ENV_VAR}={env!r} is not one of {', '.join(IMPLS)}")
    return env


def cuda_required() -> bool:
    """True when 'cuda' was forced: a kernel that cannot be built is then an error, not a fallback."""
    return requested_impl() == "cuda"
