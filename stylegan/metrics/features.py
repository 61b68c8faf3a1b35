"""Features of the real and the generated images, as NVIDIA's `metric_utils` collects them.

Real images: data set items 0, 1, 2, ... in batches of 64 through the detector (under torchrun each
rank takes every world_size-th item and the features are interleaved back into item order). Their
statistics are cached on disk, keyed by the data set's digest, the detector file's digest, what is
kept and how many items, so a second run on the same data only generates.

Generated images: until enough features are collected, per detector batch of 64, 16 times: z =
randn([4, z_dim]), labels drawn from the data set (`rng.randint(len(dataset))` per image, as
stylegan2-ada-pytorch draws them), G(z, c) with noise_mode='random' (noise drawn by G from the global
generator), then `(x * 127.5 + 128).clamp(0, 255).to(uint8)` (truncation, not rounding). With the same
seed this is NVIDIA's random stream, draw for draw."""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch

from .. import distributed
from ..progress import Progress, ProgressFn, emit

CACHE_VERSION = 1


class MetricNotice(UserWarning):
    """Something the user should know about a measurement that still goes ahead (said once)."""


@dataclass(frozen=True, order=True)
class FeatureRequest:
    """What a metric needs from one detector: its pool `features` or (Inception) its `probabilities`,
    kept as a mean and covariance (`mean_cov`) or as `all` rows."""
    kind: str               # 'inception' | 'vgg16'
    output: str = "features"
    capture: str = "all"    # 'all' | 'mean_cov'

    def run(self, detector: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        if self.output == "probabilities":
            return detector.probabilities(images, output_bias=False)
        return detector.features(images)


class FeatureStats:
    """Features appended batch by batch, kept whole and/or as float64 sums for the mean and covariance
    (NVIDIA's arithmetic: cov = sum(x^T x) / n - mu mu^T). Appends beyond `max_items` are dropped."""

    def __init__(self, capture_all: bool = False, capture_mean_cov: bool = False, max_items: Optional[int] = None):
        self.capture_all, self.capture_mean_cov, self.max_items = capture_all, capture_mean_cov, max_items
        self.num_items = 0
        self.num_features: Optional[int] = None
        self.all_features: list[np.ndarray] = []
        self.raw_mean: Optional[np.ndarray] = None
        self.raw_cov: Optional[np.ndarray] = None

    @classmethod
    def for_request(cls, request: FeatureRequest, max_items: Optional[int]) -> "FeatureStats":
        return cls(capture_all=request.capture == "all", capture_mean_cov=request.capture == "mean_cov",
                   max_items=max_items)

    def is_full(self) -> bool:
        return self.max_items is not None and self.num_items >= self.max_items

    def append(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 2, x.shape
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        if self.num_features is None:
            self.num_features = x.shape[1]
            if self.capture_mean_cov:
                self.raw_mean = np.zeros([x.shape[1]], np.float64)
                self.raw_cov = np.zeros([x.shape[1], x.shape[1]], np.float64)
        assert x.shape[1] == self.num_features, (x.shape, self.num_features)
        if not len(x):
            return
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def append_torch(self, x: torch.Tensor, world_size: int = 1) -> None:
        """Append this rank's batch; under torchrun every rank's batch, interleaved sample by sample."""
        self.append(distributed.gather_interleaved(x, world_size).cpu().numpy())

    def get_all(self) -> np.ndarray:
        assert self.capture_all
        return np.concatenate(self.all_features) if self.all_features else np.zeros([0, self.num_features or 0],
                                                                                   np.float32)

    def get_mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.capture_mean_cov and self.num_items > 0
        mean = self.raw_mean / self.num_items
        cov = self.raw_cov / self.num_items - np.outer(mean, mean)
        return mean, cov


@dataclass
class MetricOptions:
    """What every metric function reads: the generator, the real data, the detectors, the devices and
    ranks, the random stream of this metric and where to report. `compute()` builds one per metric."""
    G: Optional[torch.nn.Module]
    dataset: Any = None                                 # ImageDataset (or any with __len__/__getitem__/get_label)
    detectors: Any = None                               # callable kind -> detector module
    device: torch.device = torch.device("cpu")
    G_kwargs: dict = field(default_factory=dict)
    rank: int = 0
    world_size: int = 1
    batch_size: int = 64                                # images per detector call
    batch_gen: int = 4                                  # images per generator call (fixes the random stream)
    num_workers: int = 2                                # data set decoding processes
    resolution: Optional[int] = None                    # real images resized to this (the generator's)
    cache_dir: Optional[Path] = None                    # statistics cache; None: off
    real_stats: Optional[tuple[np.ndarray, np.ndarray]] = None   # precomputed (mu, sigma) for FID
    progress: Optional[ProgressFn] = None
    stage: str = "metrics"
    rng: np.random.RandomState = field(default_factory=lambda: np.random.RandomState(0))
    notes: list = field(default_factory=list)
    plan: dict = field(default_factory=dict)            # (num_gen, draws) -> requests sharing one generator pass
    memo: dict = field(default_factory=dict)            # results of passes, shared by the metrics of one call

    def note(self, message: str) -> None:
        """Say something once per call (collected in `notes`, and a MetricNotice warning)."""
        if message not in self.notes:
            self.notes.append(message)
            if self.rank == 0:
                warnings.warn(message, MetricNotice, stacklevel=2)

    def report(self, what: str, done: int, total: Optional[int], start: float, **stats: float) -> None:
        """A Progress event of stage '<metric> <what>' ('fid50k_full real images'): each pass its own stage."""
        if self.rank == 0:
            emit(self.progress, Progress(f"{self.stage} {what}", done, total, stats=stats, seconds=time.time() - start))


# ---------------------------------------------------------------------------------------------------
# Real images

def dataset_stats(opts: MetricOptions, requests: Sequence[tuple[FeatureRequest, Optional[int]]]) -> list[FeatureStats]:
    """Features of the data set's first `max_items` images (None: all) for each request, from the
    in-call memo, the disk cache, or one pass over the data that serves every missing request."""
    if opts.dataset is None:
        raise ValueError(f"{opts.stage} needs the real images: give a data set (a statistics file only holds "
                         f"FID's mean and covariance)")
    n_data = len(opts.dataset)
    out: dict[int, FeatureStats] = {}
    todo = []
    for i, (request, max_items) in enumerate(requests):
        num_items = n_data if max_items is None else min(n_data, max_items)
        key = ("real", request, num_items)
        if key in opts.memo:
            out[i] = opts.memo[key]
            continue
        cached = _load_cached(opts, request, num_items)
        if cached is not None:
            out[i] = opts.memo[key] = cached
            continue
        todo.append((i, request, num_items, key))
    if todo:
        stats = [FeatureStats.for_request(r, n) for _, r, n, _ in todo]
        _dataset_pass(opts, [(r, s) for (_, r, _, _), s in zip(todo, stats)], max(n for _, _, n, _ in todo))
        for (i, request, num_items, key), s in zip(todo, stats):
            out[i] = opts.memo[key] = s
            _save_cached(opts, request, num_items, s)
    return [out[i] for i in range(len(requests))]


def _dataset_pass(opts: MetricOptions, jobs: list[tuple[FeatureRequest, FeatureStats]], num_items: int) -> None:
    dataset = opts.dataset
    if opts.resolution is not None and dataset.resolution != opts.resolution:
        dataset = ResizedDataset(dataset, opts.resolution)
    if hasattr(dataset, "close"):
        dataset.close()     # forked workers must open the zip themselves, not share one file offset
    subset = [(i * opts.world_size + opts.rank) % num_items for i in range((num_items - 1) // opts.world_size + 1)]
    loader = torch.utils.data.DataLoader(dataset, batch_size=opts.batch_size, sampler=subset,
                                         num_workers=opts.num_workers if num_items > opts.batch_size else 0,
                                         generator=torch.Generator())   # leaves the global stream alone
    start, done = time.time(), 0
    with torch.no_grad():
        for images, _labels in loader:
            images = images.permute(0, 3, 1, 2).contiguous().to(opts.device)   # HWC uint8 -> NCHW, as NVIDIA's
            for request, stats in jobs:
                stats.append_torch(request.run(opts.detectors(request.kind), images), opts.world_size)
            done = min(done + images.shape[0] * opts.world_size, num_items)
            opts.report("real images", done, num_items, start)


class ResizedDataset(torch.utils.data.Dataset):
    """A data set's images resized to `resolution` as NVIDIA's dataset_tool.py resizes (Pillow's Lanczos),
    for measuring against a data set stored at another resolution than the generator's."""

    def __init__(self, dataset, resolution: int):
        self.dataset, self.resolution = dataset, resolution

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int):
        from PIL import Image
        image, label = self.dataset[idx]
        squeeze = image.shape[2] == 1
        pil = Image.fromarray(image[:, :, 0] if squeeze else image)
        out = np.asarray(pil.resize((self.resolution, self.resolution), Image.LANCZOS))
        return (out[:, :, np.newaxis] if squeeze else out), label

    def close(self) -> None:
        if hasattr(self.dataset, "close"):
            self.dataset.close()


# ---------------------------------------------------------------------------------------------------
# Generated images

def draw_loader_seed() -> None:
    """NVIDIA's metrics that read real images create a DataLoader iterator first, which draws one 64-bit
    seed from the global generator before any z. Drawn here explicitly, cached statistics or not, so
    that a metric's generated images depend on its seed only."""
    torch.empty((), dtype=torch.int64).random_()


def random_labels(opts: MetricOptions, n: int) -> torch.Tensor:
    """n conditioning labels [n, c_dim]: a random data set item's label each (one draw per image when a
    data set is at hand, as stylegan2-ada-pytorch draws them), zero-width for unconditional G."""
    c_dim = int(getattr(opts.G, "c_dim", 0))
    if opts.dataset is None:
        if c_dim:
            raise ValueError(f"{opts.stage}: a conditional generator needs a data set to draw labels from")
        return torch.zeros([n, 0], device=opts.device)
    labels = [opts.dataset.get_label(opts.rng.randint(len(opts.dataset))) for _ in range(n)]
    c = torch.from_numpy(np.stack(labels).astype(np.float32)).to(opts.device)
    if c.shape[1] != c_dim:
        raise ValueError(f"{opts.stage}: the data set's labels are {c.shape[1]}-wide, the generator takes {c_dim}")
    return c


def generated_images(opts: MetricOptions) -> Iterator[torch.Tensor]:
    """Endless detector batches [batch_size, 3, H, W] uint8 of this rank's generated images."""
    G = opts.G
    assert opts.batch_size % opts.batch_gen == 0, (opts.batch_size, opts.batch_gen)
    while True:
        images = []
        for _ in range(opts.batch_size // opts.batch_gen):
            z = torch.randn([opts.batch_gen, G.z_dim], device=opts.device)
            img = G(z, random_labels(opts, opts.batch_gen), **opts.G_kwargs)
            images.append((img * 127.5 + 128).clamp(0, 255).to(torch.uint8))
        images = torch.cat(images)
        yield images.repeat([1, 3, 1, 1]) if images.shape[1] == 1 else images


def generator_stats(opts: MetricOptions, request: FeatureRequest, num_gen: int, draws: bool) -> FeatureStats:
    """Features of `num_gen` generated images for `request`. Every request planned for the same
    (num_gen, draws) in this call is served by the same pass, so FID, KID and PR at one seed generate
    their (identical) images once. `draws`: whether the metric read real images first (its stream then
    starts after the loader's seed, see `draw_loader_seed`)."""
    key, after = ("gen", request, num_gen, draws), ("gen streams after", num_gen, draws)
    if key in opts.memo:
        # The metric's streams go on as if it had generated the images itself (KID draws its subsets next).
        numpy_state, torch_state = opts.memo[after]
        opts.rng.set_state(numpy_state)
        _stream_state(opts.device, torch_state)
    else:
        requests = sorted(set(opts.plan.get((num_gen, draws), ())) | {request})
        stats = [FeatureStats.for_request(r, num_gen) for r in requests]
        start = time.time()
        with torch.no_grad():
            for images in generated_images(opts):
                for r, s in zip(requests, stats):
                    s.append_torch(r.run(opts.detectors(r.kind), images), opts.world_size)
                opts.report("generated images", min(stats[0].num_items, num_gen), num_gen, start)
                if all(s.is_full() for s in stats):
                    break
        for r, s in zip(requests, stats):
            opts.memo[("gen", r, num_gen, draws)] = s
        opts.memo[after] = opts.rng.get_state(), _stream_state(opts.device)
    return opts.memo[key]


def _stream_state(device: torch.device, state: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The global torch generator's state on `device` (set to `state` when given)."""
    if device.type == "cuda":
        if state is not None:
            torch.cuda.set_rng_state(state, device)
        return torch.cuda.get_rng_state(device)
    if state is not None:
        torch.set_rng_state(state)
    return torch.get_rng_state()


# ---------------------------------------------------------------------------------------------------
# Statistics cache and statistics files

def _cache_path(opts: MetricOptions, request: FeatureRequest, num_items: int) -> Optional[Path]:
    if opts.cache_dir is None or not hasattr(opts.dataset, "digest"):
        return None
    detector = opts.detectors(request.kind)
    key = json.dumps(dict(version=CACHE_VERSION, data=opts.dataset.digest(), detector=detector.digest,
                          output=request.output, capture=request.capture, num_items=num_items,
                          resolution=opts.resolution if opts.resolution != opts.dataset.resolution else None),
                     sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    name = getattr(opts.dataset, "name", "data")
    return Path(opts.cache_dir) / f"{name}-{request.kind}-{request.capture}-{num_items}-{digest}.npz"


def _load_cached(opts: MetricOptions, request: FeatureRequest, num_items: int) -> Optional[FeatureStats]:
    path = _cache_path(opts, request, num_items)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            stats = FeatureStats.for_request(request, num_items)
            stats.num_items = int(z["num_items"])
            if request.capture == "all":
                stats.all_features = [z["features"]]
                stats.num_features = z["features"].shape[1]
            else:
                stats.raw_mean, stats.raw_cov = z["raw_mean"], z["raw_cov"]
                stats.num_features = stats.raw_mean.shape[0]
    except (OSError, ValueError, KeyError) as e:
        opts.note(f"{path}: unreadable statistics cache ({e}); computing the statistics again")
        return None
    if stats.num_items != num_items:
        return None
    return stats


def _save_cached(opts: MetricOptions, request: FeatureRequest, num_items: int, stats: FeatureStats) -> None:
    path = _cache_path(opts, request, num_items)
    if path is None or opts.rank != 0:
        return
    from ..io.files import atomic_output
    arrays = dict(num_items=np.int64(stats.num_items))
    if request.capture == "all":
        arrays["features"] = stats.get_all()
    else:
        arrays.update(raw_mean=stats.raw_mean, raw_cov=stats.raw_cov)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    except OSError as e:       # a full disk costs the cache, not the measurement
        opts.note(f"{path}: could not write the statistics cache ({e})")


def read_statistics(path: str | os.PathLike, dim: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(mu [dim], sigma [dim, dim]) from a precomputed statistics file: pytorch-fid's and clean-fid's
    `.npz` (`mu`, `sigma`), or this toolkit's `stylegan metrics --save-stats`. One-line ValueError otherwise."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "mu" not in z.files or "sigma" not in z.files:
                raise ValueError(f"holds {', '.join(z.files) or 'nothing'}, not mu and sigma")
            mu, sigma = z["mu"], z["sigma"]
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: not a statistics file ({' '.join(str(e).split())})") from None
    if mu.shape != (dim,) or sigma.shape != (dim, dim):
        raise ValueError(f"{path}: statistics of shape mu {list(mu.shape)}, sigma {list(sigma.shape)}; "
                         f"the Inception features need mu [{dim}] and sigma [{dim}, {dim}]")
    if not (np.issubdtype(mu.dtype, np.floating) and np.issubdtype(sigma.dtype, np.floating)):
        raise ValueError(f"{path}: statistics must be floating point (mu is {mu.dtype}, sigma {sigma.dtype})")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{path}: statistics hold NaN or infinity")
    return mu.astype(np.float64), sigma.astype(np.float64)


def write_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray) -> None:
    """FID statistics in the shared format (`mu`, `sigma`, float64), written atomically."""
    from ..io.files import atomic_output
    with atomic_output(Path(path)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64))

