"""Photos as people have them -> one uint8 RGB array, the way the camera meant it to be seen."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# A 100-megapixel photo decodes to 300 MB; anything past this is more likely a decompression bomb.
MAX_PIXELS = 250_000_000


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


def read_photo(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as [H, W, 3] uint8 RGB, turned upright by its EXIF orientation.

    Raises ValueError (one line) for files that are not images or cannot be decoded, and for
    images of more than `max_pixels` pixels (checked from the header, before decoding)."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > max_pixels:
                raise ValueError(f"{path}: {img.width}x{img.height} pixels is too large a photo")
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not an image") from None
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"{path}: unreadable image ({' '.join(str(e).split()) or type(e).__name__})") from None
