"""Image files written off the generator's thread, atomically, never overwriting by accident."""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .._files import atomic_output

FORMATS = {"png": {"compress_level": 1}, "jpg": {"quality": 95}}


def save_image(img: np.ndarray, path: Path, **params) -> None:
    """Write atomically: an interrupted run leaves no truncated image behind to be skipped on resume."""
    path = Path(path)
    fmt = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}[path.suffix[1:].lower()]
    with atomic_output(path) as tmp:
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(tmp, format=fmt, **params)


class ImageWriter:
    """Encodes and writes images on worker threads so the network never waits for PNG encoding.

    PIL releases the GIL while compressing, so a couple of threads keep up with the generator."""

    def __init__(self, num_threads: int = 2, max_pending: int = 64):
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

    def put(self, img: np.ndarray, path: Path, **params) -> None:
        self.submit(lambda: save_image(img, Path(path), **params))

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
