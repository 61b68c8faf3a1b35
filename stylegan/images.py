"""Conversions between network output tensors and pixels."""
from __future__ import annotations

import numpy as np
import torch


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] float in [-1, 1] -> [N, H, W, C] uint8, exactly as NVIDIA's scripts do it.

    Two float32 steps (x * 127.5, then + 128), clamp, then truncation toward zero: this order is
    what makes the pixels bit-identical to the files NVIDIA's gen_images.py writes."""
    assert img.ndim == 4
    return (img.detach().permute(0, 2, 3, 1).to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()
