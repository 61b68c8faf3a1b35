"""Inversion: find the latent (and optionally tuned weights) that make a generator reproduce an image."""
from .project import ProjectionResult, StepInfo, project, w_stats
from .features import FeatureNet, load_feature_net

__all__ = ["ProjectionResult", "StepInfo", "project", "w_stats", "FeatureNet", "load_feature_net"]
