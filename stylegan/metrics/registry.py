"""The named metrics, with NVIDIA's names, counts and arguments (stylegan2-ada-pytorch's and stylegan3's
`metric_main.py`), so that a value printed here means what it means in the papers.

`num_gen` (when given) replaces every generated count (50 000) for quick, non-comparable runs; the real
counts stay the definition's.

One's own metric is a `Metric` whose `run(opts, num_gen)` calls the functions of `measures.py` with other
arguments (or anything else on `opts`). It is used as an object (`compute(G, data, [my_metric])`), by name
once `register(my_metric)` has run (NVIDIA's `metric_main.register_metric`), or by its import path
'package.module:attribute' (`stylegan metrics --metrics mypkg.metrics:kid10k`): that imports the
user's module, which is the user's own code, named by the user."""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import measures
from .features import FeatureRequest, MetricOptions

GEN = 50000


@dataclass(frozen=True)
class Metric:
    """A measurement: `run(opts, num_gen)` -> {result key: value}. `real`: it reads the real images (the
    data set is then required); `generated`: the generated features it asks `features.generator_stats` for,
    so that metrics of one call asking for the same share one generator pass; `detectors`: the kinds it
    loads (before its random stream is seeded)."""
    name: str
    description: str
    run: Callable[[MetricOptions, int], dict]       # (opts, num_gen) -> {result key: value}
    num_gen: int = GEN
    real: bool = False                              # reads the real images (or FID statistics)
    generated: tuple[FeatureRequest, ...] = ()     # generated features it needs (shared passes)
    detectors: tuple[str, ...] = ()
    group: str = "recommended"
    aliases: tuple[str, ...] = field(default=())


def _fid(name, max_real, description, group="recommended"):
    return Metric(name, description, lambda o, n: {name: measures.compute_fid(o, max_real, n)}, real=True,
                  generated=(measures.INCEPTION_FEATURES,), detectors=("inception",), group=group)


def _kid(name, max_real, description, group="recommended"):
    return Metric(name, description, lambda o, n: {name: measures.compute_kid(o, max_real, n, 100, 1000)},
                  real=True, generated=(measures.INCEPTION_ALL,), detectors=("inception",), group=group)


def _pr(name, max_real, description, group="recommended"):
    def run(o, n):
        p, r = measures.compute_pr(o, max_real, n, nhood_size=3, row_batch_size=10000, col_batch_size=10000)
        return {f"{name}_precision": p, f"{name}_recall": r}
    return Metric(name, description, run, real=True, generated=(measures.VGG16_ALL,), detectors=("vgg16",),
                  group=group)


def _ppl(name, space, sampling, crop, description, group="legacy"):
    return Metric(name, description, lambda o, n: {name: measures.compute_ppl(o, n, 1e-4, space, sampling, crop, 2)},
                  detectors=("vgg16",), group=group)


def _eq(name, flag, description, aliases):
    def run(o, n):
        return {name: measures.compute_equivariance(o, n, batch_size=4, **{flag: True})[0]}
    return Metric(name, description, run, group="stylegan3", aliases=aliases)


def _is(o, n):
    mean, std = measures.compute_is(o, n, num_splits=10)
    return {"is50k_mean": mean, "is50k_std": std}


METRICS: dict[str, Metric] = {m.name: m for m in [
    _fid("fid50k_full", None, "Frechet inception distance against the full data set"),
    _kid("kid50k_full", 1000000, "Kernel inception distance against the full data set"),
    _pr("pr50k3_full", 200000, "Precision and recall against the full data set"),
    _ppl("ppl2_wend", "w", "end", False, "Perceptual path length in W, end points, full image", "recommended"),
    _eq("eqt50k_int", "eqt_int", "Equivariance to integer translation (EQ-T), StyleGAN3", ("eq_t_50k", "eqt50k")),
    _eq("eqt50k_frac", "eqt_frac", "Equivariance to fractional translation (EQ-T_frac), StyleGAN3",
        ("eq_t_frac_50k",)),
    _eq("eqr50k", "eqr", "Equivariance to rotation (EQ-R), StyleGAN3", ("eq_r_50k",)),
    _fid("fid50k", 50000, "Frechet inception distance against 50k real images", "legacy"),
    _kid("kid50k", 50000, "Kernel inception distance against 50k real images", "legacy"),
    _pr("pr50k3", 50000, "Precision and recall against 50k real images", "legacy"),
    Metric("is50k", "Inception score (CIFAR-10)", _is, generated=(measures.INCEPTION_PROBS,),
           detectors=("inception",), group="legacy"),
    _ppl("ppl_zfull", "z", "full", True, "Perceptual path length in Z, full paths, face crop"),
    _ppl("ppl_wfull", "w", "full", True, "Perceptual path length in W, full paths, face crop"),
    _ppl("ppl_zend", "z", "end", True, "Perceptual path length in Z, end points, face crop"),
    _ppl("ppl_wend", "w", "end", True, "Perceptual path length in W, end points, face crop"),
]}


def names(include_aliases: bool = False) -> list[str]:
    return list(METRICS) + ([a for m in METRICS.values() for a in m.aliases] if include_aliases else [])


def register(metric: Metric) -> Metric:
    """Make `metric` known by its name (and aliases) to `lookup`, `compute` and `stylegan metrics`;
    returns it. A name already taken by another metric is a one-line ValueError."""
    if not isinstance(metric, Metric):
        raise ValueError(f"register() takes a Metric, not a {type(metric).__name__}")
    for key in (metric.name, *metric.aliases):
        taken = next((m for m in METRICS.values() if key == m.name or key in m.aliases), None)
        if taken is not None and taken != metric:
            raise ValueError(f"metric name {key!r} is already taken by {taken.name}")
    METRICS[metric.name] = metric
    return metric


def lookup(name: str) -> Metric:
    """The metric called `name` (or an alias of it), or the `Metric` at the import path
    'package.module:attribute'; a one-line ValueError with the nearest names otherwise."""
    if ":" in name:
        return _import(name.strip())
    key = name.strip().lower()
    for m in METRICS.values():
        if key == m.name or key in m.aliases:
            return m
    near = difflib.get_close_matches(key, names(include_aliases=True), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    raise ValueError(f"unknown metric {name!r}{hint} (known: {', '.join(METRICS)}; or one's own as module:attribute)")


def _import(path: str) -> Metric:
    module, _, attribute = path.partition(":")
    try:
        found = getattr(importlib.import_module(module), attribute)
    except ImportError as e:
        raise ValueError(f"metric {path!r}: cannot import {module!r} ({e})") from None
    except AttributeError:
        raise ValueError(f"metric {path!r}: module {module!r} has no {attribute!r}") from None
    if not isinstance(found, Metric):
        raise ValueError(f"metric {path!r}: a {type(found).__name__}, not a stylegan.metrics.Metric")
    return found


def parse(spec) -> list[Metric]:
    """'fid50k_full,kid50k_full' or a list of names, import paths ('module:attribute') and `Metric`s ->
    metrics, each once, in the order given."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[Metric] = []
    for item in items:
        if isinstance(item, Metric):
            m = item
        elif not isinstance(item, str):
            raise ValueError(f"a metric is a name or a Metric, not a {type(item).__name__}")
        elif not item.strip() or item.strip().lower() == "none":
            continue
        else:
            m = lookup(item)
        if m not in out:
            out.append(m)
    return out


def describe(metric: Optional[Metric] = None) -> str:
    """The table `stylegan metrics --help` prints: name, group, what it is."""
    rows = [metric] if metric else list(METRICS.values())
    return "\n".join(f"{m.name:<13s} {m.group:<11s} {m.description}" for m in rows)
