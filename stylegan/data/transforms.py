"""The crops and resizes of NVIDIA's `dataset_tool.py`, pixel for pixel.

Images are [H, W, C] uint8 with C = 1 or 3. Without a transform an image is resized to the output
size (nothing when it already has it); `center-crop` takes the largest centred square and resizes
it; `center-crop-wide` takes a centred band of the output's aspect (W x H, H <= W) across the full
width, resizes it to W x H and centres it on a black W x W canvas. An image too small for that band
is dropped (None), as NVIDIA's tool drops it. Resizing is Pillow's, with Lanczos (the default) or box."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import Image

TRANSFORMS = ("center-crop", "center-crop-wide")
RESIZE_FILTERS = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}


def resize(img: np.ndarray, width: int, height: int, resize_filter: str = "lanczos") -> np.ndarray:
    """[H, W, C] -> [height, width, C]."""
    assert img.ndim == 3 and img.dtype == np.uint8 and img.shape[2] in (1, 3), img.shape
    if img.shape[:2] == (height, width):
        return img
    pil = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    out = np.asarray(pil.resize((width, height), RESIZE_FILTERS[resize_filter]))
    return out.reshape(height, width, img.shape[2])


def center_crop(img: np.ndarray, size: int, resize_filter: str = "lanczos") -> np.ndarray:
    """The largest centred square, resized to size x size."""
    h, w = img.shape[:2]
    side = min(h, w)
    # Floors of (h - side) / 2 and (h + side) / 2: the band is `side` long and sits half a pixel
    # up/left of centre when the margin is odd, as NVIDIA's slices put it.
    top, left = (h - side) // 2, (w - side) // 2
    return resize(img[top:top + side, left:left + side], size, size, resize_filter)


def wide_band_height(width: int, height: int, out_width: int) -> int:
    """Source rows of the band center-crop-wide keeps: the output's aspect across the full width."""
    return int(np.round(out_width * height / width))


def center_crop_wide(img: np.ndarray, width: int, height: int, resize_filter: str = "lanczos") -> Optional[np.ndarray]:
    """A centred W:H band across the full width, resized to W x H, centred on a black W x W canvas;
    None when the image is narrower than W or the band shorter than H."""
    h, w, c = img.shape
    band = wide_band_height(w, h, width)
    if w < width or band < height:
        return None
    top = (h - band) // 2
    canvas = np.zeros([width, width, c], np.uint8)
    pad = (width - height) // 2
    canvas[pad:pad + height] = resize(img[top:top + band], width, height, resize_filter)
    return canvas


def apply_transform(img: np.ndarray, transform: Optional[str], width: int, height: int,
                    resize_filter: str = "lanczos") -> Optional[np.ndarray]:
    """One source image -> its data set image (None: dropped by center-crop-wide)."""
    if transform is None:
        return resize(img, width, height, resize_filter)
    if transform == "center-crop":
        assert width == height
        return center_crop(img, width, resize_filter)
    if transform == "center-crop-wide":
        return center_crop_wide(img, width, height, resize_filter)
    raise ValueError(f"unknown transform {transform!r}: expected one of {', '.join(TRANSFORMS)}")


def drops(width: int, height: int, transform: Optional[str], out_width: int, out_height: int) -> bool:
    """Whether `apply_transform` drops a width x height image (known from its header)."""
    return transform == "center-crop-wide" and (width < out_width or wide_band_height(width, height, out_width) < out_height)
