"""Paste an (edited) aligned crop back into its original photo.

The crop was resampled from the photo through the alignment's quad; the inverse warp puts it back,
and a feathered mask fades it into the photo so no seam shows. Pixels outside the quad are the
photo's own, untouched."""
from __future__ import annotations

import numpy as np
import scipy.ndimage
from PIL import Image

from .align import AlignedFace

# The crop's border band that fades into the photo, as a fraction of the crop's side.
FEATHER = 0.08


def feather_mask(size: int, feather: float = FEATHER) -> np.ndarray:
    """[size, size] float32: 1 inside, falling smoothly to 0 at the edges (a blurred inset square)."""
    band = max(1, int(round(size * feather)))
    mask = np.zeros([size, size], np.float32)
    mask[band:size - band, band:size - band] = 1
    return scipy.ndimage.gaussian_filter(mask, sigma=band / 2.5)


def paste_back(photo: np.ndarray, crop: np.ndarray, face: AlignedFace, feather: float = FEATHER) -> np.ndarray:
    """Blend `crop` ([S, S, 3] uint8, any size: it is mapped onto the face's quad) into `photo`."""
    h, w, _ = photo.shape
    size = crop.shape[0]
    # photo (continuous) -> crop (continuous) coordinates, for a crop of this size.
    to_crop = np.diag([size / face.size, size / face.size, 1.0]) @ face.to_crop()
    # Only the quad's bounding box can change: warp that window, leave the rest alone.
    lo = np.clip(np.floor(face.quad.min(axis=0)).astype(int) - 1, 0, [w, h])
    hi = np.clip(np.ceil(face.quad.max(axis=0)).astype(int) + 1, 0, [w, h])
    if np.any(hi <= lo):
        return photo.copy()
    shift = np.array([[1, 0, lo[0]], [0, 1, lo[1]], [0, 0, 1]], dtype=np.float64)
    coeffs = tuple((to_crop @ shift)[:2].flatten())
    box = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
    warped = np.asarray(Image.fromarray(crop).transform(box, Image.Transform.AFFINE, coeffs,
                                                         Image.Resampling.BICUBIC), dtype=np.float32)
    mask = Image.fromarray(feather_mask(size, feather)).transform(box, Image.Transform.AFFINE, coeffs,
                                                                   Image.Resampling.BILINEAR)
    alpha = np.asarray(mask, dtype=np.float32)[..., None]
    out = photo.copy()
    window = out[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
    out[lo[1]:hi[1], lo[0]:hi[0]] = np.clip(np.rint(window * (1 - alpha) + warped * alpha), 0, 255).astype(np.uint8)
    return out
