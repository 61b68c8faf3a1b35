"""Each metric with NVIDIA's explicit arguments (`compute_fid(opts, max_real, num_gen)`, ...): features
or samples from `features.py`, `ppl.py`, `equivariance.py`, the formula from `scores.py`. The named
metrics of `registry.py` fix the arguments; tests and experiments call these directly."""
from __future__ import annotations

from typing import Optional

import torch

from . import scores
from .equivariance import equivariance_psnrs
from .features import FeatureRequest, MetricOptions, dataset_stats, draw_loader_seed, generator_stats
from .ppl import ppl_distances

INCEPTION_FEATURES = FeatureRequest("inception", "features", "mean_cov")
INCEPTION_ALL = FeatureRequest("inception", "features", "all")
INCEPTION_PROBS = FeatureRequest("inception", "probabilities", "all")
VGG16_ALL = FeatureRequest("vgg16", "features", "all")


def _say_counts(opts: MetricOptions, max_real: Optional[int], num_gen: int) -> None:
    """A data set smaller than the metric's count is used whole; say so once."""
    if opts.dataset is None:
        return
    n, wanted = len(opts.dataset), max_real if max_real is not None and max_real <= num_gen else num_gen
    if n < wanted:
        opts.note(f"the data set has {n} images, fewer than the {wanted} {opts.stage} is defined with: "
                  f"using all {n} (with few real images the value is biased and not comparable to published ones)")


def compute_fid(opts: MetricOptions, max_real: Optional[int], num_gen: int) -> float:
    if opts.real_stats is not None:
        mu_real, sigma_real = opts.real_stats
    else:
        _say_counts(opts, max_real, num_gen)
        mu_real, sigma_real = dataset_stats(opts, [(INCEPTION_FEATURES, max_real)])[0].get_mean_cov()
    draw_loader_seed()
    mu_gen, sigma_gen = generator_stats(opts, INCEPTION_FEATURES, num_gen, draws=True).get_mean_cov()
    return scores.frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real) if opts.rank == 0 else float("nan")


def compute_kid(opts: MetricOptions, max_real: Optional[int], num_gen: int, num_subsets: int,
                max_subset_size: int) -> float:
    _say_counts(opts, max_real, num_gen)
    real = dataset_stats(opts, [(INCEPTION_ALL, max_real)])[0].get_all()
    draw_loader_seed()
    gen = generator_stats(opts, INCEPTION_ALL, num_gen, draws=True).get_all()
    if opts.rank != 0:
        return float("nan")
    return scores.kernel_inception_distance(gen, real, num_subsets, max_subset_size, opts.rng)


def compute_pr(opts: MetricOptions, max_real: Optional[int], num_gen: int, nhood_size: int, row_batch_size: int,
               col_batch_size: int) -> tuple[float, float]:
    _say_counts(opts, max_real, num_gen)
    real = dataset_stats(opts, [(VGG16_ALL, max_real)])[0].get_all()
    draw_loader_seed()
    gen = generator_stats(opts, VGG16_ALL, num_gen, draws=True).get_all()
    if opts.rank != 0:
        return float("nan"), float("nan")
    # NVIDIA measures distances between float16 features; the rounding of that is part of the metric.
    real, gen = (torch.from_numpy(x).to(torch.float16).to(opts.device) for x in (real, gen))
    return scores.precision_recall(real, gen, nhood_size, row_batch_size, col_batch_size)


def compute_is(opts: MetricOptions, num_gen: int, num_splits: int) -> tuple[float, float]:
    probs = generator_stats(opts, INCEPTION_PROBS, num_gen, draws=False).get_all()
    return scores.inception_score(probs, num_splits) if opts.rank == 0 else (float("nan"), float("nan"))


def compute_ppl(opts: MetricOptions, num_samples: int, epsilon: float, space: str, sampling: str, crop: bool,
                batch_size: int) -> float:
    dist = ppl_distances(opts, num_samples, epsilon, space, sampling, crop, batch_size)
    return scores.path_length(dist) if opts.rank == 0 else float("nan")


def compute_equivariance(opts: MetricOptions, num_samples: int, batch_size: int, **which) -> tuple[float, ...]:
    opts.G_kwargs = dict(opts.G_kwargs, force_fp32=True)       # as stylegan3's metric_main sets it
    return equivariance_psnrs(opts, num_samples, batch_size, **which)
