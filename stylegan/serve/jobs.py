"""Long work off the request threads: one job per page at a time, cancellable, with progress.

A job runs a library story on its own thread and hands the story a progress callback. Each
`Progress` event the story reports is kept (the latest only) for the page's event stream, its
preview image encoded here, on the job's thread, at most a few times a second, carrying the
provenance the job gives it (an aligned crop is the photo's pixels, a step's image the network's). Cancelling sets a
flag; the next event raises `Cancelled` inside the story, which stops it there."""
from __future__ import annotations

import base64
import threading
import time
import traceback
from typing import Any, Callable

from .._errors import first_line
from ..io.image_files import encode_image
from ..progress import Cancelled, Progress
from ..provenance import Provenance

# Previews are encoded at most this often (the last step's always): a page cannot show more.
PREVIEW_INTERVAL_S = 0.25


class Job:
    """`work(progress)` on a thread; `finish(result)` (on that thread) when it returns. A job whose
    events carry previews says what each preview is: `provenance(event)`."""

    def __init__(self, kind: str, work: Callable[[Callable[[Progress], None]], Any],
                 finish: Callable[[Any], None] | None = None,
                 provenance: Callable[[Progress], Provenance] | None = None):
        self.kind = kind
        self.state = "running"            # running | done | failed | cancelled
        self.message = ""                 # one line: what failed, or what the result is
        self.seq = 0                      # bumped at every change, for the event stream
        self.started = time.monotonic()
        self._work, self._finish, self._provenance = work, finish, provenance
        self._last: Progress | None = None
        self._preview: str | None = None  # data: URL of the latest preview
        self._preview_at = 0.0
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"stylegan-job-{kind}", daemon=True)

    def start(self) -> "Job":
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self.state == "running"

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def report(self, event: Progress) -> None:
        """The story's progress callback."""
        if self._cancel.is_set():
            raise Cancelled()
        preview = None
        now = time.monotonic()
        last = event.total is not None and event.done >= event.total
        if event.preview is not None and (last or now - self._preview_at >= PREVIEW_INTERVAL_S):
            if self._provenance is None:
                raise TypeError(f"the {self.kind} job shows previews but does not say what they are")
            png = encode_image(event.preview, "png", self._provenance(event), compress_level=1)
            preview = "data:image/png;base64," + base64.b64encode(png).decode()
            self._preview_at = now
        with self._lock:
            self._last = event
            if preview is not None:
                self._preview = preview
            self.seq += 1

    def snapshot(self) -> dict:
        """The job as JSON for the page: state, the latest event, the latest preview."""
        with self._lock:
            p = self._last
            return {"kind": self.kind, "state": self.state, "message": self.message, "seq": self.seq,
                    "stage": p.stage if p else None, "done": p.done if p else 0, "total": p.total if p else None,
                    "stats": {k: float(v) for k, v in (p.stats if p else {}).items()},
                    "seconds": time.monotonic() - self.started, "preview": self._preview}

    def _run(self) -> None:
        try:
            result = self._work(self.report)
            if self._cancel.is_set():
                raise Cancelled()
            if self._finish is not None:
                self._finish(result)
            state, message = "done", ""
        except Cancelled:
            state, message = "cancelled", "cancelled"
        except ValueError as e:      # the library's one-line errors: bad input, not a bug
            state, message = "failed", first_line(e)
        except Exception as e:      # a bug: the page gets one line, the server's log the traceback
            traceback.print_exc()
            state, message = "failed", f"{type(e).__name__}: {first_line(e)}"
        with self._lock:
            self.state, self.message = state, message
            self.seq += 1
