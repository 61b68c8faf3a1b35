"""Quality metrics with NVIDIA's names, counts and arithmetic: FID, KID, precision/recall, IS, PPL and
StyleGAN3's equivariance. `compute(G, data, names)` is the front door; `registry.METRICS` lists the
names; one's own metric is a `Metric` over the functions of `measures` (see `registry`), used as an
object, registered by name or named by its import path 'module:attribute'."""
from .detectors import DEFAULT_DETECTORS, load_detector
from .features import FeatureStats, MetricNotice, MetricOptions, read_statistics, write_statistics
from .registry import METRICS, Metric, lookup, register
from .runner import MetricResult, compute, data_statistics
from .scores import (frechet_distance, inception_score, kernel_inception_distance, path_length, precision_recall,
                     psnr, trace_sqrtm_product)

__all__ = ["compute", "MetricResult", "METRICS", "Metric", "register", "lookup", "load_detector",
           "DEFAULT_DETECTORS", "FeatureStats", "MetricOptions", "MetricNotice", "read_statistics",
           "write_statistics", "data_statistics", "frechet_distance", "kernel_inception_distance",
           "precision_recall", "inception_score", "path_length", "psnr", "trace_sqrtm_product"]
