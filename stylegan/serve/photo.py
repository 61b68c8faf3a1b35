"""The page's "Your photo" as the photo pipeline's steps (stylegan/pipelines/photo.py), and the
`stylegan edit --photo` command that makes the same image.

Upload: `find_faces` (small crops to pick from). Project: `project_photo` with the faces found at
upload, so nothing is detected twice; the chosen face is cropped again at the size the command line
aligns at, and projected with its defaults (loss 'auto', seed 303). Slider moves: `edit_face` with
every edit applied together, `paste_faces` for paste-back. The command line runs the same steps."""
from __future__ import annotations

import shlex
from dataclasses import dataclass

import numpy as np
import torch

from ..faces import AlignedFace
from ..inversion.losses import default_distance
from ..pipelines.edit import EditSpec
from ..pipelines.photo import PhotoProjection, edit_face, find_faces, paste_faces, project_photo
from ..progress import ProgressFn

THUMBNAIL = 128        # px: the face crops the page shows to pick from
SEED = 303             # `stylegan edit --photo`'s default --seed


@dataclass
class Projected:
    """A face of the session's photo in a network's latent space, and how it was projected."""
    network: str                    # the served network's name
    projection: PhotoProjection     # the library's: latent, editing generator, face, directions so far
    face: int                       # which face of the photo, largest first
    steps: int
    pti_steps: int                  # 0: no pivotal tuning


def faces_of(photo: np.ndarray) -> list[AlignedFace]:
    """Every face in the photo, largest first, as small crops to pick from."""
    return find_faces(photo, size=THUMBNAIL)


def project(G: torch.nn.Module, D: torch.nn.Module | None, photo: np.ndarray, faces: list[AlignedFace],
            face: int, *, network: str, space: str = "w", steps: int = 1000, pti_steps: int = 0,
            progress: ProgressFn | None = None) -> Projected:
    """Project face number `face` (then tune G to it, with `pti_steps`), reporting every step."""
    _, projection = project_photo(G, photo, face=face, faces=faces, space=space, steps=steps,
                                  loss=default_distance(D), seed=SEED, pti=pti_steps > 0,
                                  pti_steps=max(pti_steps, 1), progress=progress)
    return Projected(network, projection, face, steps, pti_steps)


def render(projected: Projected, specs: list[EditSpec], photo: np.ndarray | None = None) -> np.ndarray:
    """The face with every edit applied at once, [R, R, C] uint8; pasted back into `photo` when given."""
    crop = edit_face(projected.projection, specs, together=True)
    if photo is None:
        return crop[0]
    return paste_faces(photo, projected.projection.face, crop)[0]


def command(network_source: str, photo_name: str, projected: Projected, edits: list[str], paste_back: bool) -> str:
    """The `stylegan edit --photo` command that makes the same image."""
    args = ["stylegan", "edit", "--network", network_source, "--photo", photo_name,
            *(["--face", str(projected.face)] if projected.face else []),
            "--space", projected.projection.space, "--steps", str(projected.steps)]
    if projected.pti_steps:
        args += ["--pti", "--pti-steps", str(projected.pti_steps)]
    for e in edits or ["sefa:0:0.0"]:          # the command needs an edit: strength 0 is none
        args += ["--edit", e]
    args += ["--together", *(["--paste-back"] if paste_back else []), "--outdir", "edits"]
    return " ".join(shlex.quote(a) for a in args)
