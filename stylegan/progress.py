"""One progress event for every long story: image sets, alignment, projection, tuning, training, metrics.

The library never prints. A long function takes `progress: ProgressFn | None` and calls it with a
`Progress` after each unit of work; the command line turns events into a bar or log lines, the web
page streams them, a notebook ignores them. Raising from the callback (e.g. `Cancelled`) stops the
story at the next event: that is how a caller cancels.

Some stories happen where no `progress` argument reaches: a download started deep inside loading a
network, aligning a face or building a feature network. Those report to the ambient sink a front end
installs around its work (`with reporting(printer): ...`), read with `current()`; with none installed
they stay silent."""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional


@dataclass(frozen=True)
class Progress:
    stage: str                      # what is running: 'generate', 'align', 'project', 'tune', 'train', 'fid50k_full'
    done: int                       # units finished in this stage (steps, images, photos, kimg)
    total: Optional[int] = None     # units in this stage, None when open-ended
    stats: Mapping[str, float] = field(default_factory=dict)  # numbers worth showing: loss, psnr, sec/kimg
    item: Optional[str] = None      # what the unit was about: a file name, a seed, a snapshot
    preview: Any = None             # [H, W, C] uint8 image of the current state, when the story has one
    seconds: float = 0.0            # since the stage started

    @property
    def fraction(self) -> Optional[float]:
        return self.done / self.total if self.total else None


ProgressFn = Callable[[Progress], None]


class Cancelled(Exception):
    """Raised by a progress callback to stop the story that called it."""


def format_time(seconds: float) -> str:
    """'12s', '3m 05s', '2h 01m 09s', '1d 03h 00m': durations as NVIDIA's logs (and metric-*.jsonl) write them."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02}m {s % 60:02}s"
    return f"{s // 86400}d {(s // 3600) % 24:02}h {(s // 60) % 60:02}m"


def format_bytes(n: float) -> str:
    """'512 B', '1.5 KiB', '12.3 MiB', '1.2 GiB': amounts of data, e.g. a download's."""
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# A context variable, not a global: a sink set in one thread or asyncio task is not seen by others
# running beside it (a new thread starts with none), and leaving `reporting` restores the one before.
_sink: ContextVar[Optional[ProgressFn]] = ContextVar("stylegan_progress_sink", default=None)


@contextmanager
def reporting(fn: Optional[ProgressFn]) -> Iterator[Optional[ProgressFn]]:
    """Within the block, stories that take no progress argument from their caller (downloads) report
    to `fn`; None silences them. Blocks nest: the innermost one wins."""
    token = _sink.set(fn)
    try:
        yield fn
    finally:
        _sink.reset(token)


def current() -> Optional[ProgressFn]:
    """The sink installed by the innermost `reporting` block, or None (report nothing)."""
    return _sink.get()


def emit(progress: Optional[ProgressFn], event: Progress) -> None:
    """Call `progress` with `event` when there is a callback (saves an `if` at every call site)."""
    if progress is not None:
        progress(event)
