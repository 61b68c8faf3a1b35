"""The formulas, on arrays: FID, KID, precision/recall, IS, PPL's filtered mean, EQ's PSNR.

Each reproduces NVIDIA's `metrics/*.py` given the same features; where NVIDIA computes in float32 or
float16 on purpose (PR's distances, PPL's mean) we do too, elsewhere float64. FID needs tr sqrtm(S1 S2):
NVIDIA calls scipy's `sqrtm` on the non-symmetric product (~30 s at 2048 x 2048 on a CPU and badly
conditioned); here it comes from Cholesky factors and one symmetric eigenvalue problem (or, for
singular covariances, the singular values of a small matrix): see `trace_sqrtm_product`."""
from __future__ import annotations

import math

import numpy as np
import torch


def trace_sqrtm_product(a, b) -> float:
    """tr sqrtm(a @ b) for symmetric positive semi-definite a, b [d, d] (float64).

    With a = La La^T and b = Lb Lb^T, the eigenvalues of a b are the squared singular values of
    La^T Lb, and those of La^T b La. Both positive definite (statistics of more samples than features):
    Cholesky factors and the symmetric eigenproblem of La^T b La. Otherwise the singular one gets a
    pivoted Cholesky factor [d, rank] and the trace is the sum of the singular values of La^T Lb: a small
    matrix, and no square roots of rounding noise from the null space."""
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64)
    assert a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape == b.shape, (a.shape, b.shape)
    a, b = (a + a.T) / 2, (b + b.T) / 2
    factors = []
    for x in (a, b):
        factor, info = torch.linalg.cholesky_ex(x)
        factors.append(factor if int(info) == 0 else None)
    if factors[0] is not None and factors[1] is not None:
        m = factors[0].T @ b @ factors[0]
        return float(torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum())
    la, lb = (f if f is not None else torch.from_numpy(pivoted_cholesky(x.numpy())) for f, x in zip(factors, (a, b)))
    return float(torch.linalg.svdvals(la.T @ lb).sum())


def pivoted_cholesky(a: np.ndarray) -> np.ndarray:
    """L [d, r] with a ~= L L^T for PSD a, r its numerical rank: greedy on the largest remaining
    diagonal, stopping once it falls below d * eps * max(diag(a)) (the rank LAPACK's pstrf reports).
    numpy, not torch: r small steps, each a matrix-vector product too small to share out over threads."""
    d = a.shape[0]
    diag = a.diagonal().copy()
    tol = d * np.finfo(a.dtype).eps * max(float(diag.max()), 0.0)
    rows = np.zeros_like(a)                                         # L^T, filled row by row
    for k in range(d):
        p = int(diag.argmax())
        pivot = float(diag[p])
        if pivot <= tol:
            return rows[:k].T
        rows[k] = (a[p] - rows[:k, p] @ rows[:k]) / math.sqrt(pivot)   # a is symmetric: row p = column p
        diag -= np.square(rows[k])
        diag[p] = 0
    return rows.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)) (Heusel et al. 2017; NVIDIA's FID given the same stats)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    m = float(np.square(mu1 - mu2).sum())
    return m + float(np.trace(sigma1) + np.trace(sigma2)) - 2 * trace_sqrtm_product(sigma1, sigma2)


def kernel_inception_distance(gen: np.ndarray, real: np.ndarray, num_subsets: int, max_subset_size: int,
                              rng: np.random.RandomState) -> float:
    """KID (Binkowski et al. 2018): the unbiased MMD^2 estimate with the cubic kernel (x.y / d + 1)^3,
    averaged over `num_subsets` random subsets of m = min(n_gen, n_real, max_subset_size) each. Subsets
    are drawn gen then real per round, `rng.choice(n, m, replace=False)`, as NVIDIA draws them."""
    gen, real = np.asarray(gen, np.float64), np.asarray(real, np.float64)
    assert gen.ndim == real.ndim == 2 and gen.shape[1] == real.shape[1], (gen.shape, real.shape)
    n = gen.shape[1]
    m = min(gen.shape[0], real.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples on each side, got {gen.shape[0]} and {real.shape[0]}")
    t = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)


def pairwise_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [len(x), len(y)] in the inputs' dtype, by the matrix-product form torch.cdist
    takes for more than 25 rows: sqrt(max(|x|^2 + |y|^2 - 2 x.y, 1e-30)). In float16 (NVIDIA's PR
    features) the rounding of this form decides which probes fall inside a neighbourhood."""
    xn = x.pow(2).sum(dim=-1, keepdim=True)
    yn = y.pow(2).sum(dim=-1, keepdim=True)
    xp = torch.cat([x.mul(-2), xn, torch.ones_like(xn)], dim=-1)
    yp = torch.cat([y, torch.ones_like(yn), yn], dim=-1)
    return (xp @ yp.mT).clamp_min_(1e-30).sqrt_()


def precision_recall(real: torch.Tensor, gen: torch.Tensor, nhood_size: int = 3, row_batch_size: int = 10000,
                     col_batch_size: int = 10000) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019). Each manifold item's radius is the
    distance to its `nhood_size`-th nearest neighbour in its own set (itself excluded); a probe is in
    the manifold when it lies within some item's radius. precision: generated probes in the real
    manifold; recall: real probes in the generated one. Distances in the features' dtype."""
    def distances(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return torch.cat([pairwise_distances(rows, c) for c in cols.split(col_batch_size)], dim=1)

    results = []
    for manifold, probes in ((real, gen), (gen, real)):
        kth = torch.cat([distances(rows, manifold).to(torch.float32).kthvalue(nhood_size + 1).values
                         .to(manifold.dtype) for rows in manifold.split(row_batch_size)])
        inside = torch.cat([(distances(rows, manifold) <= kth).any(dim=1) for rows in probes.split(row_batch_size)])
        results.append(float(inside.to(torch.float32).mean()))
    return results[0], results[1]


def inception_score(probs: np.ndarray, num_splits: int) -> tuple[float, float]:
    """IS (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))) per split of the rows; mean and std over splits."""
    probs = np.asarray(probs, np.float64)
    n = probs.shape[0]
    scores = []
    for i in range(num_splits):
        part = probs[i * n // num_splits:(i + 1) * n // num_splits]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


def path_length(dist: np.ndarray) -> float:
    """PPL's robust mean: the per-sample distances between the 1st (lower) and 99th (higher) percentile,
    averaged in their own precision (float32), as NVIDIA's."""
    dist = np.asarray(dist)
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(np.extract(np.logical_and(dist >= lo, dist <= hi), dist).mean())


def psnr(sum_squared_error: float, sum_mask: float) -> float:
    """PSNR in dB of images in -1..1 (peak-to-peak 2) from the masked error sum and the mask's sum."""
    return 20 * math.log10(2) - 10 * math.log10(sum_squared_error / sum_mask)
