"""Photos as people have them -> one uint8 RGB array, the way the camera meant it to be seen.

A photo's size is read from its header and held to a pixel budget before a byte of it is decoded:
a few hundred kilobytes of PNG can declare 13300 x 13300 pixels, and aligning or projecting a
photo costs about BYTES_PER_PIXEL bytes of memory per pixel. The budget replaces Pillow's own
decompression-bomb guard (and its raw warning) with one line that says what a photo of that size
would cost and how to allow it (`max_pixels`, `--max-pixels` on the command line)."""
from __future__ import annotations

import os
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._files import check_regular_file

# Measured peak memory of `stylegan align` (decode, RGB copy, landmarks, crop) on 36-megapixel
# photos, above the process's baseline: 21-22 bytes per pixel (`stylegan project` 17.5).
BYTES_PER_PIXEL = 22
# The default budget: every camera photo but medium-format ones, about 1.4 GB to align.
MAX_PIXELS = 64_000_000

# Pillow's guard is one global setting; our own check replaces it while a header is read.
_PIL_LIMIT = threading.Lock()


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


def _gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.1f} GB"


def check_pixels(width: int, height: int, max_pixels: int = MAX_PIXELS, name: str = "image") -> None:
    """Refuse an image of width x height pixels past `max_pixels`, in one line that says what it
    would cost. Readers of any image (photos, data sets) call it with the header's size."""
    if max_pixels is not None and width * height > max_pixels:
        raise ValueError(f"{name}: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is past the "
                         f"{max_pixels / 1e6:g}-megapixel budget ({_gb(BYTES_PER_PIXEL * max_pixels)} of memory to "
                         f"align or project; this one: {_gb(BYTES_PER_PIXEL * width * height)}): allow more with "
                         f"max_pixels")


def open_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open an image file lazily (its header read, nothing decoded) and hold its size to `max_pixels`.
    The caller closes it. Raises a one-line ValueError for anything else."""
    check_regular_file(path, "an image")
    try:
        with _PIL_LIMIT, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{path}: unreadable image ({' '.join(str(e).split()) or type(e).__name__})") from None
    try:
        check_pixels(img.width, img.height, max_pixels, str(path))
    except ValueError:
        img.close()
        raise
    return img


def read_photo(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as [H, W, 3] uint8 RGB, turned upright by its EXIF orientation.

    Raises ValueError (one line) for files that are not images, cannot be decoded, or hold more than
    `max_pixels` pixels (checked from the header, before decoding)."""
    img = open_image(path, max_pixels)
    try:
        with img, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
            return to_rgb(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: unreadable image ({' '.join(str(e).split()) or type(e).__name__})") from None
