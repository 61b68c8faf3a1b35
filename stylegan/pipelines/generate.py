"""Seeds -> images: the "this person does not exist" pipeline.

Seed s gives the image NVIDIA's gen_images.py gives for seed s: z = RandomState(s).randn(1, z_dim),
mapped with batch 1 (the mapping is cheap, and a batch-1 matmul rounds exactly as the reference
does), then synthesised in batches, where the heavy work is.
"""
from __future__ import annotations

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
    device = network_device(G)
    z = torch.from_numpy(z_from_seeds(seeds, G.z_dim)).to(device)
    c = class_labels(G.c_dim, 1, class_idx, device)
    ws = [G.mapping(z[i:i + 1], c, truncation_psi=psi, truncation_cutoff=truncation_cutoff) for i in range(len(seeds))]
    return torch.cat(ws) if ws else torch.zeros([0, G.num_ws, G.w_dim], device=device)


def synthesize_float(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
    """ws [B, num_ws, w_dim] -> float images [B, C, H, W] in about [-1, 1], differentiable in ws
    and in G's weights (projection and training build on it; callers choose their grad mode)."""
    assert ws.ndim == 3 and ws.shape[1:] == (G.num_ws, G.w_dim), f"ws must be [B, {G.num_ws}, {G.w_dim}]"
    return G.synthesis(ws.to(network_device(G)), noise_mode=check_noise_mode(noise_mode))


def synthesize(G: torch.nn.Module, ws: torch.Tensor, noise_mode: str = "const") -> np.ndarray:
    """ws [B, num_ws, w_dim] -> uint8 images [B, H, W, C]."""
    with torch.no_grad():   # pixels for files or screens: nothing to differentiate
        return to_uint8(synthesize_float(G, ws, noise_mode))


@torch.no_grad()
def generate_batches(G: torch.nn.Module, seeds: Sequence[int], psi: float = 1.0,
                     truncation_cutoff: int | None = None, noise_mode: str = "const",
                     class_idx: int | None = None, batch_size: int = 8) -> Iterator[Batch]:
    """Stream images in batches of `batch_size` seeds, in seed-list order."""
    psi = check_psi(psi, truncation_cutoff, G.num_ws)
    check_noise_mode(noise_mode)
    check_batch_size(batch_size)
    class_labels(G.c_dim, 0, class_idx)  # validate before any work
    for start in range(0, len(seeds), batch_size):
        chunk = list(seeds[start:start + batch_size])
        ws = map_seeds(G, chunk, psi, truncation_cutoff, class_idx)
        yield Batch(chunk, synthesize(G, ws, noise_mode), ws.cpu())


@torch.no_grad()
def generate(G: torch.nn.Module, seeds: Sequence[int], psi: float = 1.0, truncation_cutoff: int | None = None,
             noise_mode: str = "const", class_idx: int | None = None, batch_size: int = 8,
             output: str = "uint8"):
    """All images for `seeds`: a [N, H, W, C] uint8 array, or a list of PIL images (output='pil')."""
    empty = np.zeros([0, G.img_resolution, G.img_resolution, G.img_channels], np.uint8)
    batches = generate_batches(G, seeds, psi, truncation_cutoff, noise_mode, class_idx, batch_size)
    images = np.concatenate([empty] + [b.images for b in batches])
    if output == "uint8":
        return images
    if output == "pil":
        from PIL import Image
        return [Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img) for img in images]
    raise ValueError(f"unknown output {output!r}: expected 'uint8' or 'pil'")
