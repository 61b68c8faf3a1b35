"""InterFaceGAN (Shen et al. 2020): an attribute that varies linearly in w is separated by a
hyperplane; its unit normal is the edit direction. Latents are ranked by an attribute score, the
top and bottom few percent become positive and negative examples, and a linear SVM finds the
plane. Conditional directions keep other attributes fixed by projecting their normals out."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import scipy.optimize
import torch

from ..images import to_uint8
from ..seeds import z_from_seeds
from .directions import Direction

Scorer = Callable[[np.ndarray], float]   # an image [H, W, 3] uint8 -> an attribute score


def linear_svm(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[np.ndarray, float]:
    """Soft-margin linear SVM with the squared hinge loss (L2-SVM), solved in the primal:
    min_w,b 1/2 |w|^2 + C sum max(0, 1 - y_i (w.x_i + b))^2. Returns (w, b)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape

    def objective(p):
        w, b = p[:d], p[d]
        margin = 1 - y * (x @ w + b)
        active = np.maximum(margin, 0)
        loss = 0.5 * w @ w + c * np.sum(active ** 2)
        g = -2 * c * active * y
        return loss, np.concatenate([w + x.T @ g, [g.sum()]])

    res = scipy.optimize.minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                                  options={"maxiter": 2000})
    return res.x[:d], float(res.x[d])


def split_by_score(scores: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the top and bottom `ratio` of scores (at least one each)."""
    if not 0 < ratio <= 0.5:
        raise ValueError(f"ratio must lie in (0, 0.5], got {ratio}")
    order = np.argsort(scores)
    k = max(1, int(len(scores) * ratio))
    return order[-k:], order[:k]


def boundary(latents: np.ndarray, scores: np.ndarray, ratio: float = 0.02,
             conditions: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Unit normal [D] of the plane separating high from low scores; with `conditions` (other
    attributes' normals), the component along them is removed so those attributes stay put."""
    latents, scores = np.asarray(latents, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if len(latents) != len(scores):
        raise ValueError(f"{len(latents)} latents but {len(scores)} scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite numbers")
    top, bottom = split_by_score(scores, ratio)
    x = np.concatenate([latents[top], latents[bottom]])
    y = np.concatenate([np.ones(len(top)), -np.ones(len(bottom))])
    # Centre and scale so the SVM's regularisation treats every dimension alike; map back after.
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-12
    w, _ = linear_svm((x - mu) / sd, y)
    n = w / sd
    n /= np.linalg.norm(n)
    if len(conditions):
        basis, _ = np.linalg.qr(np.stack([np.asarray(c, dtype=np.float64).reshape(-1) for c in conditions], 1))
        n = n - basis @ (basis.T @ n)
        norm = np.linalg.norm(n)
        if norm < 1e-8:
            raise ValueError("the direction lies in the span of the conditions: nothing is left")
        n /= norm
    return n


def interfacegan(G: torch.nn.Module, score: Scorer | dict[int, float], num_samples: int = 10_000,
                 ratio: float = 0.02, conditions: Sequence[Direction] = (), seed: int = 0, psi: float = 1.0,
                 batch_size: int = 16) -> Direction:
    """Find an attribute direction in w. `score` is a callable image -> score (a built-in labeler,
    or a user's classifier), or a dict seed -> score (e.g. read from a CSV); with a dict the
    latents are those of its seeds, as NVIDIA's scripts draw them."""
    device = next(G.parameters()).device
    if isinstance(score, dict):
        seeds = sorted(score)
        scores = np.array([score[s] for s in seeds], dtype=np.float64)
        z = torch.from_numpy(z_from_seeds(seeds, G.z_dim)).to(device)
        with torch.no_grad():
            latents = G.mapping(z, None, truncation_psi=psi)[:, 0].cpu().numpy()
    else:
        rng = np.random.RandomState(seed)
        latents, scores = [], []
        for start in range(0, num_samples, batch_size):
            z = torch.from_numpy(rng.randn(min(batch_size, num_samples - start), G.z_dim)).to(device)
            with torch.no_grad():
                ws = G.mapping(z, None, truncation_psi=psi)
                images = to_uint8(G.synthesis(ws, noise_mode="const"))
            latents.append(ws[:, 0].cpu().numpy())
            scores += [score(img) for img in images]
        latents, scores = np.concatenate(latents), np.asarray(scores, dtype=np.float64)
        keep = np.isfinite(scores)              # a labeler that finds no face returns nan
        latents, scores = latents[keep], scores[keep]
    if len(scores) < 4:
        raise ValueError(f"only {len(scores)} latents have a score: InterFaceGAN needs more")
    for c in conditions:
        if c.space != "w" or c.dim != G.w_dim:
            raise ValueError(f"condition direction is {c.space}[{c.dim}], expected w[{G.w_dim}]")
    n = boundary(latents, scores, ratio, [c.vectors[0].numpy() for c in conditions])
    return Direction(torch.from_numpy(n.astype(np.float32)), "w", "interfacegan",
                     params={"num_samples": int(len(scores)), "ratio": ratio, "seed": seed, "psi": psi,
                             "conditional": len(conditions)})
