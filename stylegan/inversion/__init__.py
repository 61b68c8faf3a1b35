"""Inversion: find the latent (and optionally tuned weights) that make a generator reproduce an image."""
from .project import ProjectionResult, StepInfo, project, project_batch, w_stats
from .features import FeatureNet, load_feature_net, lpips_vgg16
from .lpips import LPIPS
from .pti import TuningResult, TuneStep, pivotal_tuning

__all__ = ["ProjectionResult", "StepInfo", "project", "project_batch", "w_stats", "FeatureNet", "load_feature_net", "lpips_vgg16", "LPIPS", "TuningResult", "TuneStep", "pivotal_tuning"]
