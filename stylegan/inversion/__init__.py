"""Inversion: find the latent (and optionally tuned weights) that make a generator reproduce an image."""
from .project import ProjectionResult, project, project_batch, w_stats, with_noise
from .features import FeatureNet, load_feature_net, lpips_vgg16
from .lpips import LPIPS
from .pti import TuningResult, pivotal_tuning

__all__ = ["ProjectionResult", "project", "project_batch", "w_stats", "with_noise", "FeatureNet", "load_feature_net",
           "lpips_vgg16", "LPIPS", "TuningResult", "pivotal_tuning"]
