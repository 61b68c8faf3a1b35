"""Photos as people have them -> one uint8 array, the way the camera meant it to be seen.

A photo is a path or an open binary file (a zip member's bytes); `name` is what messages call it.
Its size is read from the header and held to a pixel budget before a byte of it is decoded: a few
hundred kilobytes of PNG can declare 13300 x 13300 pixels, and aligning or projecting a photo costs
about BYTES_PER_PIXEL bytes of memory per pixel. The budget replaces Pillow's own decompression-bomb
guard (and its raw warning) with one line that says what a photo of that size would cost and how to
allow it (`max_pixels`, `--max-pixels` on the command line). A path that is not a regular file (a
FIFO, a device) is refused before it is opened: reading one blocks or never ends."""
from __future__ import annotations

import os
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._errors import ParamError
from ..io.files import check_regular_file

# Measured peak memory of `stylegan align` (decode, RGB copy, landmarks, crop) on 36-megapixel
# photos, above the process's baseline: 21-22 bytes per pixel (`stylegan project` 17.5).
BYTES_PER_PIXEL = 22
# The default budget: every camera photo but medium-format ones, about 1.4 GB to align.
MAX_PIXELS = 64_000_000
# Modes whose pixels are grey levels (with alpha or not, any depth).
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# EXIF orientations 5-8 turn the picture by 90 degrees: width and height swap.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
# Pillow's guard is one global setting; our own check replaces it while a header is read.
_PIL_LIMIT = threading.Lock()

PhotoFile = Union[str, os.PathLike, BinaryIO]


@dataclass(frozen=True)
class PhotoHeader:
    width: int      # upright, after the EXIF orientation
    height: int
    gray: bool      # grey levels only: a data set of such photos keeps one channel


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> [H, W, 3] uint8. 16-bit and float greys are rescaled, not clipped."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent areas become white (how a viewer shows them on a page), not black garbage.
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(canvas, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))  # L, P, CMYK, YCbCr, LAB, HSV, 1


def to_gray(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> [H, W, 1] uint8: grey modes keep their levels (rescaled as `to_rgb` does),
    colour ones are converted with Pillow's luma weights."""
    if img.mode in GRAY_MODES:
        return to_rgb(img)[..., :1]   # to_rgb repeats a grey level into three equal channels
    return np.asarray(Image.fromarray(to_rgb(img)).convert("L"))[..., None]


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB"


def check_pixels(width: int, height: int, max_pixels: Optional[int] = MAX_PIXELS, name: str = "image") -> None:
    """Refuse an image of width x height pixels past `max_pixels` (None: no budget), in one line that
    says what it would cost."""
    if max_pixels is not None and width * height > max_pixels:
        raise ParamError(f"{name}: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is past the "
                         f"{max_pixels / 1e6:g}-megapixel budget ({_gb(BYTES_PER_PIXEL * max_pixels)} of memory to "
                         f"align or project; this one: {_gb(BYTES_PER_PIXEL * width * height)}): allow more with "
                         f"{{max_pixels}}", "max_pixels")


def _open_unguarded(photo: PhotoFile) -> Image.Image:
    """Image.open with Pillow's pixel guard (and its raw warning) off: check_pixels replaces it."""
    with _PIL_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(photo)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


@contextmanager
def _opened(photo: PhotoFile, name: Optional[str], max_pixels: Optional[int]) -> Iterator[Image.Image]:
    """Open `photo` lazily (header only), its size checked; every failure one ValueError line."""
    name = name or str(photo)
    if isinstance(photo, (str, os.PathLike)):
        try:
            check_regular_file(photo, "an image")
        except ValueError as e:
            raise ValueError(f"{name}: {str(e).removeprefix(f'{photo}: ')}") from None
    try:
        with _open_unguarded(photo) as img, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            check_pixels(img.width, img.height, max_pixels, name)
            yield img
    except FileNotFoundError:
        raise ValueError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{name}: is a folder, not an image") from None
    except UnidentifiedImageError:
        raise ValueError(f"{name}: not an image Pillow can read") from None
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ValueError(f"{name}: unreadable image ({' '.join(str(e).split()) or type(e).__name__})") from None


def probe_photo(photo: PhotoFile, name: Optional[str] = None, *, max_pixels: Optional[int] = MAX_PIXELS) -> PhotoHeader:
    """Upright size and colour of a photo from its header, without decoding its pixels."""
    with _opened(photo, name, max_pixels) as img:
        # The base class reads EXIF from what the header parse found; PNG's override would decode the pixels.
        turns = Image.Image.getexif(img).get(0x0112) in _QUARTER_TURNS
        w, h = (img.height, img.width) if turns else (img.width, img.height)
        return PhotoHeader(w, h, img.mode in GRAY_MODES)


def read_photo(photo: PhotoFile, name: Optional[str] = None, gray: bool = False, *,
               max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """Read an image as [H, W, 3] uint8 RGB ([H, W, 1] with `gray`), turned upright by its EXIF orientation.

    Raises ValueError (one line) for files that are not images, cannot be decoded, or hold more than
    `max_pixels` pixels (checked from the header, before decoding)."""
    with _opened(photo, name, max_pixels) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        return to_gray(img) if gray else to_rgb(img)
