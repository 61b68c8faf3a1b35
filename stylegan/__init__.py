"""stylegan: StyleGAN2/3 generators that reproduce NVIDIA's pixels, safe loaders for every model format,
and the pipelines around them: generate, mix, align and project photos, find and apply edits, train."""
from .editing import edit
from .faces import align_face as align
from .inversion import pivotal_tuning, project
from .io import load_latents, save_latents
from .loaders import LoadedModel, LoadError, load, save
from .networks import create_model, list_archs, list_configs
from .networks.styles import style_layers, synthesize_styles, ws_to_styles
from .pipelines import generate, style_mix
from .pipelines.interpolate import interpolation_frames as interpolate
from .training import TrainingOptions, resume_training, train

__version__ = "0.1.0"

__all__ = ["LoadError", "LoadedModel", "load", "save", "create_model", "list_archs", "list_configs", "generate",
           "style_mix", "interpolate", "style_layers", "ws_to_styles", "synthesize_styles", "load_latents",
           "save_latents", "align", "project", "pivotal_tuning", "edit", "train", "resume_training", "TrainingOptions",
           "__version__"]
