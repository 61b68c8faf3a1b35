"""Inversion: find the latent (and optionally tuned weights) that make a generator reproduce an image."""
from .project import ProjectionResult, StepInfo, project, project_batch, w_stats
from .features import FeatureNet, load_feature_net
from .pti import TuningResult, TuneStep, pivotal_tuning

__all__ = ["ProjectionResult", "StepInfo", "project", "project_batch", "w_stats", "FeatureNet", "load_feature_net", "TuningResult", "TuneStep", "pivotal_tuning"]
