"""Images at the library's boundaries, and the one place they are converted.

Every public function takes and returns pictures as `[H, W, C]` (or `[N, H, W, C]`) uint8 arrays,
the layout photos, Pillow and image files have. Inside, networks work on `[N, C, H, W]` float
tensors: the generator draws in [-1, 1], the feature networks and NVIDIA's projector measure in
0..255. The conversions between the two live here and nowhere else."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in [-1, 1] -> [N, H, W, C] uint8, exactly as NVIDIA's scripts do it.

    Two float32 steps (x * 127.5, then + 128), clamp, then truncation toward zero: this order is
    what makes the pixels bit-identical to the files NVIDIA's gen_images.py writes."""
    assert img.ndim == 4
    return (img.detach().permute(0, 2, 3, 1).to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def check_uint8(images: np.ndarray | torch.Tensor, name: str = "images", batch: bool = False) -> np.ndarray:
    """`images` as a uint8 numpy array [H, W, C] (or [N, H, W, C] with `batch`); a ValueError naming
    the parameter otherwise. A channels-first array is refused with the transpose that fixes it."""
    a = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    want = 4 if batch else 3
    layout = "[N, H, W, C]" if batch else "[H, W, C]"
    if a.ndim != want or a.dtype != np.uint8:
        raise ValueError(f"{name} is {a.dtype} of shape {list(a.shape)}: expected {layout} uint8 "
                         "(as read_photo, align and generate give)")
    if a.shape[-1] not in (1, 3, 4) and a.shape[-3] in (1, 3, 4):
        raise ValueError(f"{name} has shape {list(a.shape)}, channels first: expected {layout}, "
                         "e.g. .transpose(1, 2, 0) of a [C, H, W] image")
    return a


def from_uint8(images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """[N, H, W, C] (or one [H, W, C]) uint8 -> [N, C, H, W] float32 in 0..255, the scale feature
    networks and NVIDIA's projector measure in (x / 127.5 - 1 is the generator's). Always a copy:
    a read-only array (np.asarray of a Pillow image) is fine."""
    a = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    assert a.dtype == np.uint8 and a.ndim in (3, 4), (a.dtype, a.shape)
    t = torch.tensor(a if a.ndim == 4 else a[None], device=device)
    return t.permute(0, 3, 1, 2).to(torch.float32).contiguous()


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """[H, W, C] uint8 -> [size, size, C] uint8, Lanczos (the FFHQ recipe's filter)."""
    if image.shape[0] == image.shape[1] == size:
        return image
    img = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    out = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS))
    return out[..., None] if out.ndim == 2 else out


def caption_height(width: int) -> int:
    """Height of the caption band over columns `width` pixels wide: an eighth of the width, 12 to 64
    rows, so labels stay readable on a 32 px fixture and small beside a 1024 px face."""
    return int(min(64, max(12, width // 8)))


def caption_band(labels: Sequence[str], width: int, channels: int = 3) -> np.ndarray:
    """[caption_height(width), len(labels) * width, channels] uint8: each label centred, white on
    black, over its own column of `width` pixels (as many as fit at the band's height)."""
    from PIL import ImageDraw, ImageFont
    height = caption_height(width)
    band = Image.new("L", (len(labels) * width, height))
    draw = ImageDraw.Draw(band)
    for size in range(int(height * 0.75), 5, -1):    # the largest font with every label inside its column
        try:
            font, sized = ImageFont.load_default(size=size), True
        except (TypeError, ImportError, OSError):   # no FreeType: Pillow's one bitmap size, nothing to try
            font, sized = ImageFont.load_default(), False
        boxes = [draw.textbbox((0, 0), text, font=font) for text in labels]
        if all(b[2] - b[0] <= width - 2 for b in boxes) or size == 6 or not sized:
            break
    for i, (text, b) in enumerate(zip(labels, boxes)):
        x = i * width + (width - (b[2] - b[0])) // 2 - b[0]
        draw.text((x, (height - (b[3] - b[1])) // 2 - b[1]), text, fill=255, font=font)
    return np.repeat(np.asarray(band)[..., None], channels, axis=2)
