"""`compute(G, data, names)`: the one front door to the metrics, for `stylegan metrics`, training and Python.

Each metric runs on its own random stream: the global torch generator forked and seeded with
`seed * world_size + rank` (NVIDIA's training loop seeds its processes so), a numpy RandomState with the
same seed for labels and KID's subsets; the caller's generators are untouched afterwards. With the
same seed FID, KID and PR see the same generated images (as in NVIDIA's code), so one generator pass
serves them all. Results come back as `MetricResult`s; `jsonl()` writes NVIDIA's `metric-<name>.jsonl` line."""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..progress import ProgressFn, format_time
from . import registry
from .detectors import DEFAULT_DETECTORS, KINDS, Source, load_detector
from .features import MetricOptions, read_statistics


@dataclass
class MetricResult:
    name: str
    results: dict[str, float]
    seconds: float
    num_gpus: int = 1
    notes: list[str] = field(default_factory=list)

    def jsonl(self, snapshot: Optional[str] = None) -> str:
        """One line of NVIDIA's `metric-<name>.jsonl` (same keys, same order)."""
        return json.dumps(dict(results=self.results, metric=self.name, total_time=self.seconds,
                               total_time_str=format_time(self.seconds), num_gpus=self.num_gpus,
                               snapshot_pkl=snapshot, timestamp=time.time()))

    def append_to(self, run_dir: Union[str, os.PathLike], snapshot: Optional[str] = None) -> Path:
        """Append the line to `run_dir/metric-<name>.jsonl` (NVIDIA's layout); returns the file."""
        path = Path(run_dir) / f"metric-{self.name}.jsonl"
        with open(path, "at") as f:
            f.write(self.jsonl(snapshot) + "\n")
        return path


class Detectors:
    """Detectors loaded on first use, once per call (rank 0 first under torchrun: it may download)."""

    def __init__(self, sources: Optional[Mapping[str, Source]], device: torch.device, trust_code: bool,
                 cache_dir, rank: int, world_size: int):
        unknown = set(sources or {}) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown detector kind {sorted(unknown)[0]!r}: expected {', '.join(KINDS)}")
        self.sources = {**DEFAULT_DETECTORS, **{k: v for k, v in (sources or {}).items() if v is not None}}
        self.device, self.trust_code, self.cache_dir = device, trust_code, cache_dir
        self.rank, self.world_size = rank, world_size
        self.loaded: dict[str, torch.nn.Module] = {}

    def __call__(self, kind: str) -> torch.nn.Module:
        if kind not in self.loaded:
            from .. import distributed
            if self.rank != 0:
                distributed.barrier()
            self.loaded[kind] = load_detector(self.sources[kind], kind, device=self.device,
                                              trust_code=self.trust_code, cache_dir=self.cache_dir,
                                              progress=self.rank == 0)
            if self.rank == 0:
                distributed.barrier()
        return self.loaded[kind]


def compute(G: torch.nn.Module, data, names: Union[str, Sequence[Union[str, registry.Metric]]], *, device=None,
            progress: Optional[ProgressFn] = None, rank: int = 0, world_size: int = 1,
            detectors: Optional[Mapping[str, Source]] = None, trust_code: bool = False, seed: int = 0,
            num_gen: Optional[int] = None, batch_size: int = 64, batch_gen: int = 4, num_workers: int = 2,
            cache: bool = True, cache_dir: Optional[Union[str, os.PathLike]] = None) -> list[MetricResult]:
    """Measure `G` with the metrics `names`: 'fid50k_full,kid50k_full' or a list of names (`registry.METRICS`),
    import paths of one's own metrics ('mypkg.metrics:kid10k') and `Metric`s.

    data: a data set folder or zip (opened unmirrored, unlabelled unless G is conditional), an
    `ImageDataset` (re-opened whole and unmirrored, as NVIDIA's *_full metrics do), a statistics file
    (`.npz` with `mu`, `sigma`; FID only) or None (PPL and EQ of unconditional generators need none).
    detectors: {'inception': source, 'vgg16': source} overriding NVIDIA's (registry names, paths, URLs or
    modules); trust_code=True runs TorchScript detectors as themselves (executes their code).
    num_gen overrides every generated count (quick looks; not comparable with published values).
    cache: keep the real images' statistics under `cache_dir`/metrics (default ~/.cache/stylegan).
    Rank r of `world_size` (torchrun, process group initialised) computes its share; all ranks return
    the same results. Raises a one-line ValueError on bad input."""
    metrics = registry.parse(names)
    if not metrics:
        raise ValueError("no metric to compute")
    device = torch.device(device) if device is not None else next(G.parameters()).device
    G = copy.deepcopy(G).eval().requires_grad_(False).to(device)
    base = MetricOptions(G=G, device=device, rank=rank, world_size=world_size, batch_size=batch_size,
                         batch_gen=batch_gen, num_workers=num_workers, progress=progress,
                         detectors=Detectors(detectors, device, trust_code, cache_dir, rank, world_size),
                         cache_dir=_stats_dir(cache, cache_dir))
    _attach_data(base, data, metrics)
    for m in metrics:   # metrics at one seed and count share their generated images: plan one pass for all
        key = (num_gen or m.num_gen, m.real)
        base.plan[key] = tuple(sorted(set(base.plan.get(key, ())) | set(m.generated)))
    out = []
    for m in metrics:
        opts = replace(base, stage=m.name, G_kwargs=dict(base.G_kwargs), notes=list(base.notes))
        start = time.time()
        for kind in m.detectors:    # loaded before the seeding: a download or a file must not shift the stream
            base.detectors(kind)
        with _seeded(seed * world_size + rank, device) as rng:
            opts.rng = rng
            values = m.run(opts, num_gen or m.num_gen)
        values = {k: _broadcast(v, world_size, device) for k, v in values.items()}
        out.append(MetricResult(m.name, values, time.time() - start, world_size, opts.notes))
    return out


def _attach_data(opts: MetricOptions, data, metrics: list) -> None:
    G = opts.G
    needs_images = [m.name for m in metrics if m.real]
    if data is None:
        if needs_images:
            raise ValueError(f"{needs_images[0]} needs a data set (or, for FID, a statistics file)")
        return
    if _is_statistics(data):
        opts.real_stats = read_statistics(data)
        others = [m.name for m in metrics if m.real and not m.name.startswith("fid")]
        if others:
            raise ValueError(f"{others[0]} needs the data set's images; {data} only holds FID statistics")
        if G.c_dim:
            raise ValueError("a conditional generator needs the data set for its labels, not a statistics file")
        opts.note(f"{data}: precomputed statistics; pytorch-fid's and clean-fid's are made with their own "
                  f"resizing, so FID against them differs slightly from NVIDIA's against the images")
        return
    opts.dataset = open_data(data, use_labels=bool(G.c_dim))
    if G.c_dim and not opts.dataset.has_labels:
        raise ValueError(f"{opts.dataset.path}: the generator is conditional (c_dim {G.c_dim}) but the data set "
                         f"has no labels (dataset.json)")
    _resize_to(opts, G.img_resolution, say=bool(needs_images))


def open_data(data, use_labels: bool = False):
    """A data set as NVIDIA's *_full metrics read it: every image, unmirrored. An ImageDataset that is a
    subset or mirrored is re-opened whole."""
    from ..data import ImageDataset
    if isinstance(data, ImageDataset):
        if len(data) == len(data.image_names):
            return data
        return ImageDataset(data.path, use_labels=data.use_labels)
    return ImageDataset(data, use_labels=use_labels)


def _is_statistics(data) -> bool:
    return isinstance(data, (str, os.PathLike)) and str(data).lower().endswith(".npz") and Path(data).is_file()


def _resize_to(opts: MetricOptions, resolution: Optional[int], say: bool = True) -> None:
    dataset = opts.dataset
    if resolution is not None and dataset.resolution != resolution and say:
        opts.note(f"{dataset.path}: images are {dataset.resolution}x{dataset.resolution}, the generator's "
                  f"{resolution}x{resolution}: resizing them with Lanczos, as NVIDIA's dataset_tool.py does")
    opts.resolution = resolution


def data_statistics(data, *, resolution: Optional[int] = None, detector: Optional[Source] = None, device="cpu",
                    trust_code: bool = False, progress: Optional[ProgressFn] = None, batch_size: int = 64,
                    num_workers: int = 2, cache: bool = True, cache_dir=None, rank: int = 0,
                    world_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """FID statistics (mu, sigma) of a data set's Inception features, every image, resized to `resolution`
    first when given: what `write_statistics` saves and `compute(..., data=<that file>)` reads back."""
    from .features import dataset_stats
    from .measures import INCEPTION_FEATURES
    device = torch.device(device)
    opts = MetricOptions(G=None, dataset=open_data(data), device=device, rank=rank, world_size=world_size,
                         batch_size=batch_size, num_workers=num_workers, progress=progress, stage="statistics",
                         detectors=Detectors(dict(inception=detector), device, trust_code, cache_dir, rank, world_size),
                         cache_dir=_stats_dir(cache, cache_dir))
    _resize_to(opts, resolution)
    return dataset_stats(opts, [(INCEPTION_FEATURES, None)])[0].get_mean_cov()


def _stats_dir(cache: bool, cache_dir) -> Optional[Path]:
    from ..hub import default_cache_dir
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "metrics" if cache else None


class _seeded:
    """Fork the global torch generator(s) and seed them; yield a numpy RandomState on the same seed."""

    def __init__(self, seed: int, device: torch.device):
        self.seed, self.device = seed, device

    def __enter__(self) -> np.random.RandomState:
        devices = [self.device] if self.device.type == "cuda" else []
        self.fork = torch.random.fork_rng(devices=devices)
        self.fork.__enter__()
        torch.manual_seed(self.seed)
        return np.random.RandomState(self.seed % (1 << 32))

    def __exit__(self, *exc):
        return self.fork.__exit__(*exc)


def _broadcast(value: float, world_size: int, device: torch.device) -> float:
    if world_size <= 1:
        return float(value)
    from .. import distributed
    return float(distributed.broadcast(torch.as_tensor(float(value), dtype=torch.float64, device=device), world_size))
