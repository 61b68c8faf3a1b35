"""Latent walks through a list of seeds: spherical in z (the Gaussian shell), linear in w.

Frame t of the segment from key a to key b sits at fraction ease(t / frames_per_seed); with
`loop` the walk returns from the last seed to the first, so the video repeats seamlessly."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from .._errors import ParamError
from .generate import network_device, synthesize
from .checks import check_batch_size, check_noise_mode, check_psi
from ..seeds import check_seeds, class_labels, z_from_seeds

EASINGS = {
    "linear": lambda t: t,
    "smooth": lambda t: t * t * (3 - 2 * t),   # zero velocity at each key
}


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of rows of a and b (falls back to lerp for parallel vectors)."""
    an, bn = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.arccos((an * bn).sum(-1, keepdim=True).clamp(-1, 1))
    so = torch.sin(omega)
    safe = so.abs() > 1e-6
    wa = torch.where(safe, torch.sin((1 - t) * omega) / so.where(safe, torch.ones_like(so)), torch.full_like(so, 1 - t))
    wb = torch.where(safe, torch.sin(t * omega) / so.where(safe, torch.ones_like(so)), torch.full_like(so, t))
    return wa * a + wb * b


def key_latents(G, seeds: Sequence[int], space: str, psi: float, class_idx: int | None) -> torch.Tensor:
    """[K, z_dim] z keys, or [K, num_ws, w_dim] w keys (truncated), for the seeds."""
    device = network_device(G)
    z = torch.from_numpy(z_from_seeds(seeds, G.z_dim)).to(device)
    if space == "z":
        return z
    c = class_labels(G.c_dim, len(seeds), class_idx, device)
    return G.mapping(z, c, truncation_psi=psi)


def interpolation_frames(G, seeds: Sequence[int], frames_per_seed: int = 60, space: str = "w",
                         loop: bool = True, psi: float = 1.0, easing: str = "smooth", class_idx: int | None = None,
                         noise_mode: str = "const", batch_size: int = 8) -> Iterator[np.ndarray]:
    """Yield uint8 frames [H, W, C] walking through `seeds` in order.

    The arguments are checked here, when called, so a bad one fails before a video is opened."""
    psi = check_psi(psi)
    if space not in ("z", "w"):
        raise ParamError(f"unknown interpolation {{space}} {space!r}: expected z or w", "space")
    if easing not in EASINGS:
        raise ValueError(f"unknown easing {easing!r}: expected one of {sorted(EASINGS)}")
    if len(seeds) < 2:
        raise ValueError("an interpolation needs at least two seeds")
    if frames_per_seed < 1:
        raise ParamError(f"{{frames_per_seed}} must be at least 1, got {frames_per_seed}", "frames_per_seed")
    check_batch_size(batch_size)
    check_noise_mode(noise_mode)
    check_seeds(seeds)
    class_labels(G.c_dim, 0, class_idx)
    return _walk(G, list(seeds), _Schedule(len(seeds), frames_per_seed, loop, EASINGS[easing]), space, psi,
                 class_idx, noise_mode, batch_size)


def num_frames(num_seeds: int, frames_per_seed: int, loop: bool = True) -> int:
    """Frames of a walk through `num_seeds` keys."""
    return (num_seeds - (0 if loop else 1)) * frames_per_seed + (0 if loop else 1)


class _Schedule(Sequence):
    """Frame k -> (key a, key b, eased fraction), computed when asked: a walk of any length costs
    nothing until its frames are made (a list of them cost 7 GB at 10^8 frames per seed)."""

    def __init__(self, num_keys: int, frames_per_seed: int, loop: bool, ease):
        self.keys, self.per, self.loop, self.ease = num_keys, frames_per_seed, loop, ease

    def __len__(self) -> int:
        return num_frames(self.keys, self.per, self.loop)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if not self.loop and k == len(self) - 1:
            return self.keys - 1, self.keys - 1, 0.0
        a, f = divmod(k, self.per)
        return a, (a + 1) % self.keys, self.ease(f / self.per)


@torch.no_grad()
def _walk(G, seeds: list[int], ts: Sequence[tuple[int, int, float]], space: str, psi: float, class_idx: int | None,
          noise_mode: str, batch_size: int) -> Iterator[np.ndarray]:
    keys = key_latents(G, seeds, space, psi, class_idx)
    c = class_labels(G.c_dim, 1, class_idx, network_device(G))
    for start in range(0, len(ts), batch_size):
        chunk = ts[start:start + batch_size]
        if space == "z":
            z = torch.cat([slerp(keys[i:i + 1], keys[j:j + 1], t) for i, j, t in chunk])
            ws = G.mapping(z, c.expand(len(chunk), -1), truncation_psi=psi)
        else:
            ws = torch.stack([torch.lerp(keys[i], keys[j], t) for i, j, t in chunk])
        yield from synthesize(G, ws, noise_mode)


def grid_frames(G, seeds: Sequence[int], grid: tuple[int, int], **kwargs) -> Iterator[np.ndarray]:
    """An RxC mosaic of walks: cell k walks through seeds[k::R*C]."""
    rows, cols = grid
    cells = rows * cols
    if len(seeds) % cells or len(seeds) // cells < 2:
        raise ValueError(f"a {rows}x{cols} grid needs a multiple of {cells} seeds, at least {2 * cells}")
    walks = [interpolation_frames(G, seeds[k::cells], **kwargs) for k in range(cells)]
    return _mosaic(walks, rows, cols)


def _mosaic(walks: list[Iterator[np.ndarray]], rows: int, cols: int) -> Iterator[np.ndarray]:
    from .image_set import grid_image
    for frames in zip(*walks):
        yield grid_image(np.stack(frames), rows, cols)
