"""Seeds, latents and labels, drawn exactly as NVIDIA's scripts draw them."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import torch

_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")


def parse_int_list(spec: str | Iterable[int]) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11] (ranges inclusive, order kept)."""
    if not isinstance(spec, str):
        return [int(s) for s in spec]
    out: list[int] = []
    for part in spec.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"bad integer list {spec!r}: expected e.g. '0-99,200,300-310'")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise ValueError(f"bad range {part.strip()!r} in {spec!r}: end before start")
        out.extend(range(lo, hi + 1))
    return out


def check_seeds(seeds: Sequence[int]) -> None:
    # RandomState accepts 0 .. 2**32 - 1; say so instead of numpy's traceback.
    for s in seeds:
        if not 0 <= s < 2 ** 32:
            raise ValueError(f"seed {s} out of range: seeds must lie in 0..{2 ** 32 - 1}")


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """[N, z_dim] float64, row i = RandomState(seeds[i]).randn(1, z_dim): gen_images.py's latents."""
    check_seeds(seeds)
    return np.stack([np.random.RandomState(s).randn(1, z_dim)[0] for s in seeds]) if len(seeds) else \
        np.zeros([0, z_dim])


def class_labels(c_dim: int, n: int, class_idx: int | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """One-hot labels for a conditional network, an empty [n, 0] tensor otherwise."""
    c = torch.zeros([n, c_dim], device=device)
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError("class_idx given, but the network is unconditional")
        return c
    if class_idx is None:
        raise ValueError(f"the network is conditional ({c_dim} classes): choose one with class_idx")
    if not 0 <= class_idx < c_dim:
        raise ValueError(f"class {class_idx} out of range: the network has classes 0..{c_dim - 1}")
    c[:, class_idx] = 1
    return c
