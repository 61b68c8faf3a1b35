"""GANSpace (Härkönen et al. 2020): principal components of w. Sampled w's are mostly shaped by
a few directions of large variance (pose, gender, age, lighting); the top components, applied to
a range of layers, are interpretable edits. An edit is (component k, layers, strength sigma) and
moves w by sigma * std_k * v_k."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from .directions import Direction


class RunningCovariance:
    """Mean and covariance over batches, accumulated in float64 (exact to rounding, any batch split)."""

    def __init__(self, dim: int):
        self.n = 0
        self.sum = np.zeros(dim)
        self.outer = np.zeros([dim, dim])

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.n += len(x)
        self.sum += x.sum(axis=0)
        self.outer += x.T @ x

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.sum / self.n
        return mean, self.outer / self.n - np.outer(mean, mean)


def pca(batches: Iterable[np.ndarray], dim: int, num_components: int) -> Direction:
    """Top principal components of the rows of all batches [N_i, dim]."""
    acc = RunningCovariance(dim)
    for b in batches:
        acc.update(b)
    if acc.n < 2:
        raise ValueError("PCA needs at least two samples")
    mean, cov = acc.result()
    values, vectors = np.linalg.eigh(cov)                      # ascending
    order = np.argsort(values)[::-1][:num_components]
    comps = vectors[:, order].T                                # [K, dim], unit rows
    comps *= np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])[:, None]   # a fixed sign
    std = np.sqrt(np.maximum(values[order], 0))
    return Direction(torch.from_numpy(comps.astype(np.float32)), "w", "ganspace",
                     std=torch.from_numpy(std.astype(np.float32)), mean=torch.from_numpy(mean.astype(np.float32)),
                     params={"num_samples": acc.n, "num_components": len(order)})


def ganspace(G: torch.nn.Module, num_samples: int = 100_000, num_components: int = 64, seed: int = 0,
             batch_size: int = 4096, psi: float = 1.0) -> Direction:
    """PCA of w mapped from `num_samples` random z (streamed in batches: memory stays flat)."""
    if num_samples < 2:
        raise ValueError(f"num_samples must be at least 2, got {num_samples}")
    if G.c_dim:
        raise ValueError("GANSpace needs an unconditional network")
    device = next(G.parameters()).device
    rng = np.random.RandomState(seed)

    def batches():
        left = num_samples
        while left > 0:
            n = min(batch_size, left)
            left -= n
            z = torch.from_numpy(rng.randn(n, G.z_dim)).to(device)
            with torch.no_grad():
                yield G.mapping(z, None, truncation_psi=psi)[:, 0].cpu().numpy()

    d = pca(batches(), G.w_dim, min(num_components, G.w_dim))
    d.params.update(seed=seed, psi=psi)
    return d
