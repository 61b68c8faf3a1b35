"""Image files written off the generator's thread, atomically, never overwriting by accident.

Every image the toolkit writes or hands out (a file here, bytes for the web page) is encoded by
`encode_image`, which takes the image's `Provenance` as a required argument: the one place where
what an image carries (metadata, watermark, a C2PA signature) is decided, so no story can forget it."""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from .files import atomic_output
from ..provenance import Provenance, embed, mark_pixels

FORMATS = {"png": {"compress_level": 1}, "jpg": {"quality": 95}}


def encode_image(img: np.ndarray, fmt: str, provenance: Provenance, title: str | None = None,
                 premarked: bool = False, **params) -> bytes:
    """[H, W, C] uint8 -> the bytes of a `fmt` ('png', 'jpg') file carrying `provenance` (see
    provenance.embed); `title` names the file in a C2PA manifest."""
    return embed(img, provenance, fmt, title, premarked, **params)


def save_image(img: np.ndarray, path: Path, provenance: Provenance, premarked: bool = False, **params) -> None:
    """Write atomically: an interrupted run leaves no truncated image behind to be skipped on resume."""
    path = Path(path)
    data = encode_image(img, path.suffix[1:], provenance, path.name, premarked, **params)
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


class ImageWriter:
    """Encodes and writes images on worker threads so the network never waits for PNG encoding.

    PIL releases the GIL while compressing, and the watermark's numpy and scipy work releases it too,
    so threads keep up with a GPU generator. `mark_on_caller`: put the watermark in on the caller's
    thread, in `put`: for a CPU generator, whose threads already hold every core, a worker doing it
    alongside makes both wait on each other (benchmarks/watermark.py measures both)."""

    def __init__(self, num_threads: int | None = None, max_pending: int = 64, mark_on_caller: bool = False):
        self.mark_on_caller = mark_on_caller
        num_threads = num_threads or max(2, min(8, os.cpu_count() or 2))
        self._queue: queue.Queue = queue.Queue(max_pending)
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(num_threads)]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                if self._error is None:
                    job()
            except BaseException as e:  # surfaced on the caller's thread by put()/close()
                self._error = e
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def put(self, img: np.ndarray, path: Path, provenance: Provenance, **params) -> None:
        img, premarked = self.premark(img, provenance)
        self.submit(lambda: save_image(img, Path(path), provenance, premarked, **params))

    def premark(self, img: np.ndarray, provenance: Provenance) -> tuple[np.ndarray, bool]:
        """The image to queue and whether its watermark is already in (see `mark_on_caller`)."""
        return mark_pixels(img, provenance) if self.mark_on_caller else (img, False)

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` (e.g. an image and the files that belong with it) on a worker thread."""
        self._raise()
        self._queue.put(job)

    def close(self) -> None:
        """Wait for every queued image to be on disk."""
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "ImageWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
