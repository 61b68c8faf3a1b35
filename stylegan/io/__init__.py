"""File formats for what the toolkit makes besides networks: latents (and, in stylegan.editing, directions)."""
from .latents import Latents, check_compatible, load_latents, save_latents

__all__ = ["Latents", "check_compatible", "load_latents", "save_latents"]
