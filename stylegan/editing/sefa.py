"""SeFa (Shen & Zhou 2021, "Closed-Form Factorization of Latent Semantics in GANs"): the
directions in w that the style affines amplify most. With A the affines of the chosen layers
stacked ([sum of channels, w_dim]), each row (one style channel's weights) scaled to unit length,
the directions are the eigenvectors of A^T A by decreasing eigenvalue: no sampling, seconds."""
from __future__ import annotations

import numpy as np
import torch

from .._errors import int_ranges
from ..networks.styles import style_layers
from .directions import Direction

# ws rows by the StyleGAN paper's resolution bands: coarse 4-8 px, middle 16-32 px, fine 64 px and up.
PRESETS = {"all": (0, None), "coarse": (0, 4), "middle": (4, 8), "fine": (8, None)}


def preset_rows(name: str, num_ws: int) -> list[int]:
    if name not in PRESETS:
        raise ValueError(f"unknown layer preset {name!r}: expected one of {', '.join(PRESETS)}")
    lo, hi = PRESETS[name]
    rows = list(range(lo, min(hi or num_ws, num_ws)))
    if not rows:
        raise ValueError(f"this network has {num_ws} ws rows: none of them is {name!r}")
    return rows


def affine_matrix(G: torch.nn.Module, rows: list[int]) -> tuple[np.ndarray, list[str]]:
    """Stacked, row-normalised affine weights of the conv layers that read `rows`: [sum C, w_dim]."""
    layers = [layer for layer in style_layers(G) if layer.kind == "conv" and layer.ws_index in rows]
    if not layers:
        raise ValueError(f"no convolution layers read ws rows {rows}")
    a = np.concatenate([layer.affine.weight.detach().cpu().double().numpy() for layer in layers])
    return a / np.linalg.norm(a, axis=1, keepdims=True), [layer.name for layer in layers]


def sefa(G: torch.nn.Module, layers: str | list[int] = "all", num_components: int = 16) -> Direction:
    """Top SeFa directions in w for the layers reading the given ws rows (or a preset name)."""
    rows = preset_rows(layers, G.num_ws) if isinstance(layers, str) else sorted(set(int(r) for r in layers))
    bad = [r for r in rows if not 0 <= r < G.num_ws]
    if bad:
        raise ValueError(f"ws rows {int_ranges(bad)} out of range: this network has rows 0..{G.num_ws - 1}")
    a, names = affine_matrix(G, rows)
    values, vectors = np.linalg.eigh(a.T @ a)
    order = np.argsort(values)[::-1][:num_components]
    comps = vectors[:, order].T
    comps *= np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])[:, None]   # a fixed sign
    return Direction(torch.from_numpy(comps.astype(np.float32)), "w", "sefa", layers=rows,
                     params={"layers": names, "eigenvalues": values[order].tolist()})
