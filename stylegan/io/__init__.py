"""Files in and out, below the networks: everything the toolkit reads or writes goes through here.

- `files`: atomic outputs, all-or-none groups, whole-file checks, claims, regular-file checks;
- `image_files` and `video`: images and videos, each labelled with its provenance;
- `run_record`: the record that lets a resumable command pick up where it stopped;
- `tagged`: tagged safetensors, the one container of the model, latent and direction formats;
- `latents`: the latent format (directions live in stylegan.editing, networks in stylegan.loaders)."""
from .latents import Latents, check_compatible, load_latents, save_latents

__all__ = ["Latents", "check_compatible", "load_latents", "save_latents"]
