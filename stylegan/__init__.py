"""stylegan: StyleGAN2/3 generators that reproduce NVIDIA's pixels, safe loaders for every model format."""
from .loaders import LoadError, load, save
from .networks import create_model, list_archs, list_configs
from .pipelines import generate, style_mix
from .pipelines.interpolate import interpolation_frames as interpolate

__version__ = "0.1.0"

__all__ = ["LoadError", "load", "save", "create_model", "list_archs", "list_configs", "generate", "style_mix",
           "interpolate", "__version__"]
