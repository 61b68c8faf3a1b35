"""Perceptual path length (Karras et al. 2019), sampled as NVIDIA's `perceptual_path_length.py`.

Per batch of B (labels first, then): t = rand([B]) (times 0 for end-point sampling), z0, z1 =
randn([2B, z_dim]).chunk(2); in W: lerp of the mapped ends at t and t + eps; in Z: slerp at t and t + eps,
then mapping; every `*.noise_const` buffer re-drawn with randn_like in named_buffers() order;
synthesis with noise_mode='const', float32; the face crop (rows 3/8..7/8, columns 2/8..6/8) when asked;
box downsampling to 256 px; 0..255; d = |lpips(x_t) - lpips(x_{t+eps})|^2 / eps^2 per pair."""
from __future__ import annotations

import copy
import time

import numpy as np
import torch

from .features import MetricOptions, random_labels


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the directions of a and b (rows), unit-length result."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    d = a * torch.cos(p) + c * torch.sin(p)
    return d / d.norm(dim=-1, keepdim=True)


def face_crop(img: torch.Tensor) -> torch.Tensor:
    """The centre crop PPL measures on faces: rows 3c..7c, columns 2c..6c, c = size // 8."""
    assert img.shape[2] == img.shape[3], img.shape
    c = img.shape[2] // 8
    return img[:, :, c * 3:c * 7, c * 2:c * 6]


def redraw_noise(G: torch.nn.Module) -> None:
    """Every constant noise buffer replaced by a fresh randn_like draw, in named_buffers() order."""
    for name, buf in G.named_buffers():
        if name.endswith(".noise_const"):
            buf.copy_(torch.randn_like(buf))


def pair_distances(G: torch.nn.Module, vgg: torch.nn.Module, c: torch.Tensor, epsilon: float, space: str,
                   sampling: str, crop: bool, G_kwargs: dict) -> torch.Tensor:
    """One batch of PPL samples: [B] scaled squared LPIPS distances. Draws from the global generator."""
    t = torch.rand([c.shape[0]], device=c.device) * (1 if sampling == "full" else 0)
    z0, z1 = torch.randn([c.shape[0] * 2, G.z_dim], device=c.device).chunk(2)
    if space == "w":
        w0, w1 = G.mapping(torch.cat([z0, z1]), torch.cat([c, c])).chunk(2)
        wt0 = w0.lerp(w1, t.unsqueeze(1).unsqueeze(2))
        wt1 = w0.lerp(w1, t.unsqueeze(1).unsqueeze(2) + epsilon)
    else:
        zt0 = slerp(z0, z1, t.unsqueeze(1))
        zt1 = slerp(z0, z1, t.unsqueeze(1) + epsilon)
        wt0, wt1 = G.mapping(torch.cat([zt0, zt1]), torch.cat([c, c])).chunk(2)
    redraw_noise(G)
    img = G.synthesis(torch.cat([wt0, wt1]), noise_mode="const", force_fp32=True, **G_kwargs)
    if crop:
        img = face_crop(img)
    factor = G.img_resolution // 256
    if factor > 1:
        img = img.reshape([-1, img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor, factor])
        img = img.mean([3, 5])
    img = (img + 1) * (255 / 2)
    if G.img_channels == 1:
        img = img.repeat([1, 3, 1, 1])
    lpips_t0, lpips_t1 = vgg.lpips(img).chunk(2)
    return (lpips_t0 - lpips_t1).square().sum(1) / epsilon ** 2


def ppl_distances(opts: MetricOptions, num_samples: int, epsilon: float, space: str, sampling: str, crop: bool,
                  batch_size: int) -> np.ndarray:
    """The first `num_samples` per-pair distances of NVIDIA's sampling (every rank holds all of them)."""
    assert space in ("z", "w") and sampling in ("full", "end"), (space, sampling)
    from .. import distributed
    G = copy.deepcopy(opts.G).eval().requires_grad_(False)      # its noise buffers get overwritten
    vgg = opts.detectors("vgg16")
    dist, start = [], time.time()
    with torch.no_grad():
        for batch_start in range(0, num_samples, batch_size * opts.world_size):
            c = random_labels(opts, batch_size)
            d = pair_distances(G, vgg, c, epsilon, space, sampling, crop, opts.G_kwargs)
            dist.append(distributed.gather_interleaved(d, opts.world_size))
            opts.report("path samples", min(batch_start + batch_size * opts.world_size, num_samples), num_samples,
                        start)
    return torch.cat(dist)[:num_samples].cpu().numpy()
