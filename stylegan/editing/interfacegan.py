"""InterFaceGAN (Shen et al. 2020): an attribute that varies linearly in w is separated by a
hyperplane; its unit normal is the edit direction. Conditional directions keep other attributes
fixed by projecting their normals out.

Two estimators of the normal:

- 'ridge' (the default): ridge regression of the score on w over every scored sample, its penalty
  chosen by generalised cross-validation. Scores cost a render and a face analysis each, so sample
  efficiency is what matters: on a real mapping network's W, whose covariance eigenvalues span three
  to four orders of magnitude, it recovers a planted direction (score = w.d + 5 % noise) with
  |cos| 0.996 from 4 000 samples (512-d W) where the SVM below gets 0.30, fitting in 0.1 s
  (benchmarks/directions.py --recovery).
- 'svm': the paper's recipe, a linear SVM on the top and bottom `ratio` (2 %) of the scores, for
  parity with the boundaries InterFaceGAN's files hold. A few hundred examples in hundreds of
  dimensions leave the plane underdetermined, and the margin then favours W's high-variance axes.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import scipy.optimize
import torch

from ..images import to_uint8
from ..seeds import z_from_seeds
from .directions import Direction

Scorer = Callable[[np.ndarray], float]   # an image [H, W, 3] uint8 -> an attribute score
METHODS = ("ridge", "svm")
SVM_RATIO = 0.02                         # the paper's share of top and of bottom scores


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


def ridge_direction(x: np.ndarray, y: np.ndarray, num_penalties: int = 41) -> np.ndarray:
    """Ridge regression of y [N] on x [N, D] (both centred here): the coefficients [D], with the
    penalty that minimises the generalised cross-validation error (Golub, Heath & Wahba 1979) over
    `num_penalties` values from 1e-8 to 1e2 times the mean eigenvalue of x^T x.

    One eigendecomposition x^T x = V diag(e) V^T serves every penalty lam: with g = V^T x^T y,
    beta = V (g / (e + lam)), and the fit's squared norm along eigenvector i is g_i^2 / e_i times
    the shrinkage e_i / (e_i + lam) (its trace is the fit's degrees of freedom)."""
    x = x - x.mean(axis=0)
    y = y - y.mean()
    e, v = np.linalg.eigh(x.T @ x)
    g = v.T @ (x.T @ y)
    keep = e > e.max() * 1e-12                 # directions the samples do not span carry no fit
    e, v, g = e[keep], v[:, keep], g[keep]
    reach = g ** 2 / e                         # |y projected on each principal direction of x|^2
    n, yy = len(y), y @ y
    best = None
    for lam in np.logspace(-8, 2, num_penalties) * e.mean():
        shrink = e / (e + lam)
        residual = yy - np.sum((2 * shrink - shrink ** 2) * reach)
        gcv = residual / max(n - shrink.sum(), 1e-12) ** 2
        if best is None or gcv < best[0]:
            best = (gcv, lam)
    return v @ (g / (e + best[1]))


def svm_direction(x: np.ndarray, scores: np.ndarray, ratio: float) -> np.ndarray:
    """The paper's normal [D]: a linear SVM between the top and the bottom `ratio` of the scores,
    fitted on standardised coordinates (so its penalty treats every dimension alike) and mapped back."""
    top, bottom = split_by_score(scores, ratio)
    x = np.concatenate([x[top], x[bottom]])
    y = np.concatenate([np.ones(len(top)), -np.ones(len(bottom))])
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-12
    w, _ = linear_svm((x - mu) / sd, y)
    return w / sd


def check_method(method: str, ratio: float | None) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if ratio is not None and method != "svm":
        raise ValueError(f"ratio applies to method 'svm' only; '{method}' uses every sample")
    if ratio is not None and not 0 < ratio <= 0.5:
        raise ValueError(f"ratio must lie in (0, 0.5], got {ratio}")


def boundary(latents: np.ndarray, scores: np.ndarray, *, method: str = "ridge", ratio: float | None = None,
             conditions: Sequence[np.ndarray] = ()) -> np.ndarray:
    """Unit normal [D] of the plane separating high from low scores, pointing to higher scores, by
    `method` ('ridge' on every sample, or 'svm' on the top and bottom `ratio`, default 0.02); with
    `conditions` (other attributes' normals), the component along them is removed so those
    attributes stay put."""
    check_method(method, ratio)
    latents, scores = np.asarray(latents, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if len(latents) != len(scores):
        raise ValueError(f"{len(latents)} latents but {len(scores)} scores")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite numbers")
    if np.ptp(scores) == 0:
        raise ValueError("every score is the same: there is nothing to separate")
    if method == "ridge":
        n = ridge_direction(latents, scores)
    else:
        n = svm_direction(latents, scores, SVM_RATIO if ratio is None else ratio)
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
                 method: str = "ridge", ratio: float | None = None, conditions: Sequence[Direction] = (),
                 seed: int = 0, psi: float = 1.0, batch_size: int = 16) -> Direction:
    """Find an attribute direction in w. `score` is a callable image -> score (a built-in labeler,
    or a user's classifier), or a dict seed -> score (e.g. read from a CSV); with a dict the
    latents are those of its seeds, as NVIDIA's scripts draw them. `method` and `ratio`: see
    `boundary` (ridge regression on every sample by default; the paper's SVM with method='svm')."""
    check_method(method, ratio)
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
    n = boundary(latents, scores, method=method, ratio=ratio,
                 conditions=[c.vectors[0].numpy() for c in conditions])
    params = {"num_samples": int(len(scores)), "estimator": method, "seed": seed, "psi": psi,
              "conditional": len(conditions)}
    if method == "svm":
        params["ratio"] = SVM_RATIO if ratio is None else ratio
    return Direction(torch.from_numpy(n.astype(np.float32)), "w", "interfacegan", params=params)
