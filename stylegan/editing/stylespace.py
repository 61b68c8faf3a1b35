"""StyleSpace (Wu et al. 2021): single style channels that act on one region of the image.

A channel's effect on pixel p is the Jacobian J_c(p) = d image(p) / d s_c. Its energy inside a
region M, E_in(c) = sum_{p in M} |J_c(p)|^2, against outside, E_out(c), ranks channels by how local
they are to M. All channels' energies come from a few backward passes with Hutchinson's trick:
for Rademacher noise r, E[(d <r * M, image> / d s_c)^2] = E_in(c)."""
from __future__ import annotations

import numpy as np
import torch

from ..networks.styles import style_layers, synthesize_styles, ws_to_styles
from .directions import Direction

REGIONS = ("eyes", "mouth", "nose", "brows", "hair")


def region_mask(landmarks: np.ndarray, region: str, size: int, grow: float = 0.15) -> np.ndarray:
    """[size, size] float mask of a face region from 68 landmarks in that image."""
    from PIL import Image, ImageDraw
    lm = np.asarray(landmarks, dtype=np.float64)
    polys = {
        "eyes": [lm[36:42], lm[42:48]],
        "mouth": [lm[48:60]],
        "nose": [np.concatenate([lm[27:28], lm[31:36]])],
        "brows": [lm[17:22], lm[22:27]],
    }
    if region == "hair":   # everything above the brows, across the face's width
        top = min(lm[17:27, 1].min() - 0.05 * size, size)
        mask = np.zeros([size, size], np.float32)
        mask[:max(int(top), 0), max(int(lm[0, 0]) - size // 10, 0):min(int(lm[16, 0]) + size // 10, size)] = 1
        return mask
    if region not in polys:
        raise ValueError(f"unknown region {region!r}: expected one of {', '.join(REGIONS)}")
    img = Image.new("L", (size, size))
    draw = ImageDraw.Draw(img)
    for p in polys[region]:
        c = p.mean(axis=0)
        p = c + (p - c) * (1 + grow) + np.sign(p - c) * 2     # a little room around thin shapes
        draw.polygon([tuple(q) for q in p], fill=255)
    return np.asarray(img, dtype=np.float32) / 255


def channel_locality(G: torch.nn.Module, ws: torch.Tensor, mask: torch.Tensor, probes: int = 8,
                     seed: int = 0, noise_mode: str = "const") -> torch.Tensor:
    """Per style channel (all layers, table order): E_in / (E_in + E_out) in [0, 1], averaged over
    the latents ws [N, num_ws, w_dim]; `mask` [H, W] (1 inside the region)."""
    rng = torch.Generator().manual_seed(seed)
    styles = {k: v.detach().requires_grad_(True) for k, v in ws_to_styles(G, ws).items()}
    img = synthesize_styles(G, styles, noise_mode=noise_mode)
    mask = mask.to(img.device, img.dtype)[None, None]
    e_in = e_out = 0
    for region, acc in ((mask, "in"), (1 - mask, "out")):
        total = 0
        for _ in range(probes):
            r = (torch.randint(0, 2, img.shape, generator=rng) * 2 - 1).to(img.device, img.dtype)
            grads = torch.autograd.grad((img * r * region).sum(), list(styles.values()), retain_graph=True)
            total = total + torch.cat([g.square().sum(dim=0) for g in grads])
        if acc == "in":
            e_in = total / probes
        else:
            e_out = total / probes
    return e_in / (e_in + e_out + 1e-12)


def stylespace(G: torch.nn.Module, ws: torch.Tensor, mask: np.ndarray | torch.Tensor, top: int = 10,
               probes: int = 8, min_locality: float = 0.0) -> Direction:
    """The `top` channels most local to `mask`, as one-hot S directions (most local first)."""
    layers = [layer for layer in style_layers(G) if layer.kind != "input"]
    score = channel_locality(G, ws, torch.as_tensor(mask), probes=probes)
    names, offsets, at = [], {}, 0
    for layer in style_layers(G):
        offsets[layer.name] = at
        at += layer.channels
    keep = torch.zeros_like(score, dtype=torch.bool)
    for layer in layers:                                # the input's 4 numbers are a transform, not a channel
        keep[offsets[layer.name]:offsets[layer.name] + layer.channels] = True
    score = torch.where(keep, score, torch.full_like(score, -1))
    order = torch.argsort(score, descending=True)[:top]
    order = order[score[order] >= min_locality]
    if len(order) == 0:
        raise ValueError("no style channel is local enough to the region")
    vectors = torch.zeros([len(order), at])
    vectors[torch.arange(len(order)), order] = 1
    for i in order.tolist():
        layer = max((n for n in offsets if offsets[n] <= i), key=lambda n: offsets[n])
        names.append(f"{layer}:{i - offsets[layer]}")
    return Direction(vectors, "s", "stylespace", params={"channels": names, "locality": score[order].tolist()})
