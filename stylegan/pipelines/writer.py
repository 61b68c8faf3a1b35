"""Image files written off the generator's thread, atomically, never overwriting by accident.

Every image the toolkit hands out, as a file or as bytes (the web page's downloads and live
renders), is encoded by `write_image` below: one place where what an image carries is decided."""
from __future__ import annotations

import io
import queue
import threading
from pathlib import Path
from typing import BinaryIO, Mapping

import numpy as np
from PIL import Image, PngImagePlugin

from .._files import atomic_output

FORMATS = {"png": {"compress_level": 1}, "jpg": {"quality": 95}}
_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


def write_image(img: np.ndarray, out: str | Path | BinaryIO, fmt: str, metadata: Mapping[str, str] | None = None,
                **params) -> None:
    """Encode [H, W, C] uint8 as `fmt` ('png', 'jpg') into a path or a binary stream. `metadata`
    (key -> text) goes into the PNG as text chunks; other formats have no place for it."""
    pil_format = _PIL_FORMATS.get(fmt.lower())
    if pil_format is None:
        raise ValueError(f"unknown image format {fmt!r}: expected one of {sorted(FORMATS)}")
    if metadata:
        if pil_format != "PNG":
            raise ValueError(f"metadata is written into PNG images only, not {fmt}")
        info = PngImagePlugin.PngInfo()
        for key, text in metadata.items():
            info.add_itxt(key, str(text))      # iTXt: UTF-8, so paths and names of any script survive
        params = {**params, "pnginfo": info}
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(out, format=pil_format, **params)


def encode_image(img: np.ndarray, fmt: str = "png", metadata: Mapping[str, str] | None = None, **params) -> bytes:
    """The bytes of the image file `save_image` would write (for a response body, not the disk)."""
    buf = io.BytesIO()
    write_image(img, buf, fmt, metadata, **params)
    return buf.getvalue()


def save_image(img: np.ndarray, path: Path, metadata: Mapping[str, str] | None = None, **params) -> None:
    """Write atomically: an interrupted run leaves no truncated image behind to be skipped on resume."""
    path = Path(path)
    with atomic_output(path) as tmp:
        write_image(img, tmp, path.suffix[1:], metadata, **params)


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
        while (item := self._queue.get()) is not None:
            try:
                if self._error is None:
                    save_image(*item[:2], **item[2])
            except BaseException as e:  # surfaced on the caller's thread by put()/close()
                self._error = e
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def put(self, img: np.ndarray, path: Path, **params) -> None:
        self._raise()
        self._queue.put((img, Path(path), params))

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
