"""Editing: find directions in latent space (SeFa, GANSpace, InterFaceGAN, StyleSpace) and apply them."""
from .directions import Direction, cosine, load_direction, save_direction
from .ganspace import ganspace
from .interfacegan import interfacegan

__all__ = ["Direction", "cosine", "load_direction", "save_direction", "ganspace", "interfacegan"]
from .apply import Move, edit, edit_many
from .sefa import sefa
from .stylespace import region_mask, stylespace

__all__ += ["Move", "edit", "edit_many", "sefa", "region_mask", "stylespace"]
