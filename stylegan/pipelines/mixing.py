"""Style mixing: each cell takes its row seed's w and the listed layers from its column seed's w.

Follows NVIDIA's style_mixing.py step for step, so the grid has the same pixels: the distinct
seeds are mapped as one batch at psi 1 (in `list(set(rows + cols))` order), truncated with the
explicit formula w_avg + (w - w_avg) * psi, and each cell is synthesised on its own."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .._errors import int_ranges
from .._memory import check_held
from .generate import network_device, synthesize
from .checks import check_noise_mode, check_psi
from ..seeds import check_seeds, class_labels


@dataclass
class MixResult:
    rows: list[int]
    cols: list[int]
    sources: dict[int, np.ndarray]              # seed -> [H, W, C] uint8, unmixed
    cells: dict[tuple[int, int], np.ndarray]    # (row, col) -> [H, W, C] uint8

    def grid(self) -> np.ndarray:
        """Sources along the top and left, mixed cells inside, black corner: [H*(R+1), W*(C+1), C]."""
        h, w, ch = next(iter(self.sources.values())).shape
        canvas = np.zeros([h * (len(self.rows) + 1), w * (len(self.cols) + 1), ch], np.uint8)
        for j, col in enumerate(self.cols, start=1):
            canvas[:h, j * w:(j + 1) * w] = self.sources[col]
        for i, row in enumerate(self.rows, start=1):
            canvas[i * h:(i + 1) * h, :w] = self.sources[row]
            for j, col in enumerate(self.cols, start=1):
                canvas[i * h:(i + 1) * h, j * w:(j + 1) * w] = self.cells[(row, col)]
        return canvas


def mix_ws(G: torch.nn.Module, rows: Sequence[int], cols: Sequence[int], psi: float = 1.0,
           class_idx: int | None = None) -> dict[int, torch.Tensor]:
    """seed -> truncated w [num_ws, w_dim] for every seed of the grid."""
    check_seeds(list(rows) + list(cols))
    seeds = list(set(list(rows) + list(cols)))
    device = network_device(G)
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).to(device)
    c = class_labels(G.c_dim, len(seeds), class_idx, device)
    c = c if G.c_dim else None       # as style_mixing.py calls it; class_labels has checked class_idx
    ws = G.mapping(z, c)
    w_avg = G.mapping.w_avg
    ws = w_avg + (ws - w_avg) * psi
    return dict(zip(seeds, ws))


@torch.no_grad()
def style_mix(G: torch.nn.Module, rows: Sequence[int], cols: Sequence[int], styles: Sequence[int],
              psi: float = 1.0, noise_mode: str = "const", class_idx: int | None = None) -> MixResult:
    psi = check_psi(psi)
    check_noise_mode(noise_mode)
    if not len(rows) or not len(cols):
        raise ValueError("style mixing needs at least one row seed and one column seed")
    # Sized before anything is drawn: seed ranges may be lazy, and the grid is one array in memory
    # (the cells once more beside it).
    size = (len(rows) + 1) * (len(cols) + 1) * G.img_resolution ** 2 * G.img_channels
    check_held(2 * size, f"a {len(rows)}x{len(cols)} grid of {G.img_resolution} px images",
               "use fewer row or column seeds")
    rows, cols, styles = list(rows), list(cols), list(styles)
    bad = [s for s in styles if not 0 <= s < G.num_ws]
    if bad:
        raise ValueError(f"style layers {int_ranges(bad)} out of range: this network has layers 0..{G.num_ws - 1}")
    w = mix_ws(G, rows, cols, psi, class_idx)
    seeds = list(w)
    sources = dict(zip(seeds, synthesize(G, torch.stack([w[s] for s in seeds]), noise_mode)))
    cells = {}
    for row in rows:
        for col in cols:
            mixed = w[row].clone()
            mixed[styles] = w[col][styles]
            cells[(row, col)] = synthesize(G, mixed[None], noise_mode)[0]
    return MixResult(rows, cols, sources, cells)
