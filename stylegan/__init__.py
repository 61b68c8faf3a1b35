"""stylegan: StyleGAN2/3 generators that reproduce NVIDIA's pixels, safe loaders for every model format."""
from .networks import create_model, list_archs, list_configs

__version__ = "0.1.0"

__all__ = ["create_model", "list_archs", "list_configs", "__version__"]
