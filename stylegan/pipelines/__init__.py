"""Pipelines: short stories over one Generator (generate, style-mix, write image sets, edit a photo)."""
from .generate import generate, generate_batches, map_seeds, synthesize
from .image_set import write_image_set
from ..seeds import parse_int_list, z_from_seeds
from .mixing import style_mix
from .edit_folder import EditInputs, PhotoFolder, edit_into_folder, latent_inputs_for, seed_inputs_for
from .photo import (PhotoEdit, PhotoProjection, edit_face, edit_photo, find_faces, paste_faces, project_face,
                    project_photo)

__all__ = ["generate", "generate_batches", "map_seeds", "synthesize", "write_image_set", "parse_int_list",
           "z_from_seeds", "style_mix", "PhotoEdit", "PhotoProjection", "edit_photo", "find_faces", "project_face",
           "project_photo", "edit_face", "paste_faces", "EditInputs", "PhotoFolder", "edit_into_folder",
           "latent_inputs_for", "seed_inputs_for"]
