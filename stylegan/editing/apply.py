"""Apply a direction to latents: w (one vector for every layer), w+ (per-layer rows) or S (styles)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .._errors import int_ranges
from ..images import to_uint8
from ..networks.styles import style_layers, synthesize_styles, ws_to_styles
from .directions import Direction


def as_ws(G: torch.nn.Module, latent: torch.Tensor) -> torch.Tensor:
    """w [w_dim] / [N, w_dim] or w+ [num_ws, w_dim] / [N, num_ws, w_dim] -> ws [N, num_ws, w_dim]."""
    latent = torch.as_tensor(latent, dtype=torch.float32)
    if latent.ndim == 1:
        latent = latent[None]
    if latent.ndim == 2 and latent.shape == (G.num_ws, G.w_dim) and G.num_ws != 1:
        latent = latent[None]
    if latent.ndim == 2:
        latent = latent[:, None].repeat([1, G.num_ws, 1])
    if latent.ndim != 3 or latent.shape[1:] != (G.num_ws, G.w_dim):
        raise ValueError(f"latent of shape {tuple(latent.shape)} does not fit this network's "
                         f"w [{G.w_dim}] or w+ [{G.num_ws}, {G.w_dim}]")
    return latent


def step(direction: Direction, component: int = 0, use_std: bool = True) -> torch.Tensor:
    """The vector one unit of strength moves: v_k, times std_k when the direction has one (GANSpace)."""
    v = direction.component(component)
    if use_std and direction.std is not None:
        v = v * direction.std[component]
    return v


def shift_ws(G, ws: torch.Tensor, direction: Direction, strength: float, component: int = 0,
             rows: Sequence[int] | None = None, use_std: bool = True) -> torch.Tensor:
    """ws [N, num_ws, w_dim] moved along a w direction on the given rows (default: the direction's, else all)."""
    if direction.space != "w":
        raise ValueError(f"a {direction.space}-space direction cannot move w")
    if direction.dim != G.w_dim:
        raise ValueError(f"direction has {direction.dim} dimensions, the network's w has {G.w_dim}")
    rows = list(range(G.num_ws)) if rows is None and direction.layers is None else list(rows or direction.layers)
    bad = [r for r in rows if not 0 <= r < G.num_ws]
    if bad:
        raise ValueError(f"layers {int_ranges(bad)} out of range: this network has ws rows 0..{G.num_ws - 1}")
    out = ws.clone()
    out[:, rows] += strength * step(direction, component, use_std).to(ws.device)
    return out


def shift_styles(G, styles: dict[str, torch.Tensor], direction: Direction, strength: float,
                 component: int = 0) -> dict[str, torch.Tensor]:
    """Styles moved along an S direction (a vector over all layers' channels, in table order)."""
    if direction.space != "s":
        raise ValueError(f"a {direction.space}-space direction cannot move styles")
    total = sum(s.shape[1] for s in styles.values())
    if direction.dim != total:
        raise ValueError(f"direction has {direction.dim} dimensions, this network's S has {total}")
    delta = strength * step(direction, component)
    out, at = {}, 0
    for layer in style_layers(G):
        s = styles[layer.name]
        out[layer.name] = s + delta[at:at + layer.channels].to(s.device)
        at += layer.channels
    return out


@dataclass(frozen=True)
class Move:
    """One edit among several applied together: `direction`'s component moved by `strength`, on
    the ws rows `rows` (w directions; default the direction's own rows, else all)."""
    direction: Direction
    strength: float
    component: int = 0
    rows: Sequence[int] | None = None
    use_std: bool = True


def apply_moves(G: torch.nn.Module, latent: torch.Tensor, moves: Sequence[Move]
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """The latent (w or w+) after every move: ws [N, num_ws, w_dim] with the w moves added, and,
    when some move is in S, the styles of those ws with the S moves added (else None)."""
    ws = as_ws(G, latent).to(next(G.parameters()).device)
    for move in moves:
        if not np.isfinite(move.strength):
            raise ValueError(f"strength must be a finite number, got {move.strength}")
        if move.direction.space == "w":
            ws = shift_ws(G, ws, move.direction, move.strength, move.component, move.rows, move.use_std)
    s_moves = [m for m in moves if m.direction.space != "w"]
    if not s_moves:
        return ws, None
    styles = ws_to_styles(G, ws)
    for move in s_moves:
        styles = shift_styles(G, styles, move.direction, move.strength, move.component)
    return ws, styles


@torch.no_grad()
def edit_many(G: torch.nn.Module, latent: torch.Tensor, moves: Sequence[Move], noise_mode: str = "const"
              ) -> np.ndarray:
    """Images of `latent` (w or w+) with every move applied at once: [N, H, W, C] uint8. No moves
    (or all at strength 0) gives the latent's own image."""
    ws, styles = apply_moves(G, latent, moves)
    img = G.synthesis(ws, noise_mode=noise_mode) if styles is None else \
        synthesize_styles(G, styles, noise_mode=noise_mode)
    return to_uint8(img)


@torch.no_grad()
def edit(G: torch.nn.Module, latent: torch.Tensor, direction: Direction, strengths: Sequence[float],
         component: int = 0, layers: Sequence[int] | None = None, noise_mode: str = "const",
         use_std: bool = True) -> np.ndarray:
    """Images of `latent` (w or w+) moved by each strength along `direction`: [S, N, H, W, C] uint8.

    w directions move the chosen ws rows; S directions move the styles. Strength 0 is the input."""
    return np.stack([edit_many(G, latent, [Move(direction, strength, component, layers, use_std)], noise_mode)
                     for strength in strengths])
