"""stylegan: StyleGAN2/3 generators that reproduce NVIDIA's pixels, safe loaders for every model format,
and the pipelines around them: generate, mix, align and project photos, find and apply edits, edit a photo,
train, measure."""
from ._version import __version__
from .editing import edit
from .faces import align_face as align
from .inversion import pivotal_tuning, project
from .io import load_latents, save_latents
from .loaders import LoadedModel, LoadError, load, load_generator, save
from .loaders.names import create_model
from .networks import list_archs, list_configs
from .networks.styles import style_layers, synthesize_styles, ws_to_styles
from . import metrics
from .pipelines import edit_photo, generate, style_mix
from .pipelines.interpolate import interpolation_frames as interpolate
from .provenance import Provenance, verify
from .training import TrainingOptions, resume_training, train

__all__ = ["LoadError", "LoadedModel", "load", "load_generator", "save", "create_model", "list_archs", "list_configs",
           "generate", "style_mix", "interpolate", "style_layers", "ws_to_styles", "synthesize_styles", "load_latents",
           "save_latents", "align", "project", "pivotal_tuning", "edit", "edit_photo", "train", "resume_training",
           "TrainingOptions", "metrics", "Provenance", "verify", "__version__"]
