"""Seeds -> images: the "this person does not exist" pipeline.

Seed s gives the image NVIDIA's gen_images.py gives for seed s: z = RandomState(s).randn(1, z_dim),
mapped with batch 1 (the mapping is cheap, and a batch-1 matmul rounds exactly as the reference
does), then synthesised in batches, where the heavy work is.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from ..images import to_uint8
from .checks import check_batch_size, check_noise_mode, check_psi
from ..seeds import class_labels, z_from_seeds


@dataclass
class Batch:
    seeds: list[int]
    images: np.ndarray   # [B, H, W, C] uint8
    ws: torch.Tensor     # [B, num_ws, w_dim] float32, on the CPU


def network_device(G: torch.nn.Module) -> torch.device:
    return next(G.parameters()).device


def map_seeds(G: torch.nn.Module, seeds: Sequence[int], psi: float = 1.0, truncation_cutoff: int | None = None,
              class_idx: int | None = None) -> torch.Tensor:
    """[N, num_ws, w_dim] ws for the seeds, one seed at a time as the reference scripts do."""
    psi = check_psi(psi, truncation_cutoff, G.num_ws)     # nan would map every seed to a blank image
    device = network_device(G)
    z = torch.from_numpy(z_from_seeds(seeds, G.z_dim)).to(device)
    c = class_labels(G.c_dim, 1, class_idx, device)
    ws = [G.mapping(z[i:i + 1], c, truncation_psi=psi, truncation_cutoff=truncation_cutoff) for i in range(len(seeds))]
    return torch.cat(ws) if ws else torch.zeros([0, G.num_ws, G.w_dim], device=device)


@contextmanager
def input_transform(G: torch.nn.Module, transform: np.ndarray | torch.Tensor | None):
    """StyleGAN3: render with the Fourier input transformed by `transform` [3, 3] (see
    `networks.stylegan3.pose_transform`) inside the block, G's own transform again after it.
    None changes nothing (and is the only value a StyleGAN2 generator takes)."""
    if transform is None:
        yield G
        return
    from ..networks.stylegan3 import set_input_transform
    layer = getattr(G.synthesis, "input", None)
    before = layer.transform.clone() if layer is not None and hasattr(layer, "transform") else None
    set_input_transform(G, transform)
    try:
        yield G
    finally:
        layer.transform.copy_(before)


def synthesize_float(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
    """ws [B, num_ws, w_dim] -> float images [B, C, H, W] in about [-1, 1], differentiable in ws
    and in G's weights (projection and training build on it; callers choose their grad mode)."""
    assert ws.ndim == 3 and ws.shape[1:] == (G.num_ws, G.w_dim), f"ws must be [B, {G.num_ws}, {G.w_dim}]"
    return G.synthesis(ws.to(network_device(G)), noise_mode=check_noise_mode(noise_mode))


def synthesize(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str = "const",
               transform: np.ndarray | None = None) -> np.ndarray:
    """ws [B, num_ws, w_dim] -> uint8 images [B, H, W, C]; `transform`: StyleGAN3's input transform."""
    with torch.no_grad(), input_transform(G, transform):   # pixels for files or screens: nothing to differentiate
        return to_uint8(synthesize_float(G, ws, noise_mode))


@torch.no_grad()
def generate_batches(G: torch.nn.Module, seeds: Sequence[int], psi: float = 1.0,
                     truncation_cutoff: int | None = None, noise_mode: str = "const",
                     class_idx: int | None = None, batch_size: int = 8,
                     transform: np.ndarray | None = None) -> Iterator[Batch]:
    """Stream images in batches of `batch_size` seeds, in seed-list order. `transform` [3, 3]:
    StyleGAN3's input transform (`networks.stylegan3.pose_transform(translate, rotate)`)."""
    psi = check_psi(psi, truncation_cutoff, G.num_ws)
    check_noise_mode(noise_mode)
    check_batch_size(batch_size)
    class_labels(G.c_dim, 0, class_idx)  # validate before any work
    for start in range(0, len(seeds), batch_size):
        chunk = list(seeds[start:start + batch_size])
        ws = map_seeds(G, chunk, psi, truncation_cutoff, class_idx)
        yield Batch(chunk, synthesize(G, ws, noise_mode, transform), ws.cpu())


@torch.no_grad()
def generate(G: torch.nn.Module, seeds: Sequence[int], psi: float = 1.0, truncation_cutoff: int | None = None,
             noise_mode: str = "const", class_idx: int | None = None, batch_size: int = 8,
             output: str = "uint8", transform: np.ndarray | None = None):
    """All images for `seeds`: a [N, H, W, C] uint8 array, or a list of PIL images (output='pil').
    StyleGAN3 renders through `transform` [3, 3] when given (gen_images.py --translate/--rotate:
    `networks.stylegan3.pose_transform(translate, rotate)`)."""
    empty = np.zeros([0, G.img_resolution, G.img_resolution, G.img_channels], np.uint8)
    batches = generate_batches(G, seeds, psi, truncation_cutoff, noise_mode, class_idx, batch_size, transform)
    images = np.concatenate([empty] + [b.images for b in batches])
    if output == "uint8":
        return images
    if output == "pil":
        from PIL import Image
        return [Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img) for img in images]
    raise ValueError(f"unknown output {output!r}: expected 'uint8' or 'pil'")
