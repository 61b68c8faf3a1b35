"""The photo story as the page takes it, in steps: find the faces, invert one, paste edits back.

This is the one place the server meets the photo pipeline, so that the pipeline's own step
functions can replace these bodies without the server changing. Every step is a library call:
`stylegan.align`, `align_landmarks`, `stylegan.project`, `stylegan.pivotal_tuning`, `paste_back`;
the inversion is the one `stylegan edit --photo` runs (same crop, loss, seed and steps), so the
command the page shows reproduces what it shows."""
from __future__ import annotations

import copy
import shlex
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..faces import AlignedFace, NoFaceError, align_face
from ..faces.align import align_landmarks
from ..faces.paste import paste_back
from ..images import to_uint8
from ..inversion import pivotal_tuning, project
from ..inversion.losses import default_distance
from ..inversion.project import noise_layers
from ..progress import Progress

THUMBNAIL = 128        # px: the face crops the page shows to pick from
PTI_STEPS = 350        # `stylegan edit --photo --pti` tunes this long


@dataclass
class Inverted:
    """A face of a photo as a latent of a network, and the generator to edit it with."""
    network: str                    # the served network's name
    G: torch.nn.Module              # with the projection's noise maps (and tuned weights, with PTI)
    ws: torch.Tensor                # [1, num_ws, w_dim]
    face: AlignedFace               # the crop at the network's resolution: where paste-back puts edits
    space: str
    steps: int
    pti_steps: int
    image: np.ndarray               # [H, W, C] uint8 of the inversion, unedited
    directions: dict = field(default_factory=dict)   # resolve_direction's cache for this G


def find_faces(photo: np.ndarray) -> list[AlignedFace]:
    """Every face in the photo, largest first, as small FFHQ crops (the same landmarks the
    network's own crop is made from)."""
    try:
        return align_face(photo, size=THUMBNAIL, all_faces=True)
    except NoFaceError:
        raise ValueError("no face found in this photo") from None


def invert(G: torch.nn.Module, D: torch.nn.Module | None, photo: np.ndarray, face: AlignedFace, *, network: str,
           space: str = "w", steps: int = 500, pti_steps: int = 0,
           progress: Callable[[Progress], None] | None = None) -> Inverted:
    """Project the face into G (then tune G to it, with `pti_steps`), reporting every step."""
    crop = align_landmarks(photo, face.landmarks, G.img_resolution)
    target = crop.image.transpose(2, 0, 1).copy()

    def step(info):
        if progress is not None:
            progress(Progress("project", info.step, info.num_steps, {"loss": info.loss, "distance": info.dist},
                              preview=None if info.images is None else to_uint8(info.images[:1])[0]))

    result = project(G, target, default_distance(D), space=space, num_steps=steps, progress=step)
    if pti_steps > 0:
        def tune_step(info):
            if progress is not None:
                progress(Progress("tune", info.step, info.num_steps, {"loss": info.loss, "distance": info.dist}))
        tuned = pivotal_tuning(G, target, result, default_distance(D), num_steps=pti_steps, progress=tune_step)
        G_edit, image = tuned.G, tuned.image
    else:
        # The projection's noise maps are part of the reconstruction: edit with them.
        G_edit = copy.deepcopy(G)
        for name, layer in noise_layers(G_edit).items():
            layer.noise_const = result.noise[name]
        image = result.image
    return Inverted(network, G_edit, result.ws[None], crop, space, steps, pti_steps, image)


def paste(photo: np.ndarray, crop: np.ndarray, inverted: Inverted) -> np.ndarray:
    """The (edited) crop blended back into the photo where the face was."""
    return paste_back(photo, crop, inverted.face)


def command(network_source: str, photo_name: str, inverted: Inverted, face_index: int, edits: list[str],
            paste_back_: bool) -> str:
    """The `stylegan edit --photo` command that makes the same image. The command line edits the
    largest face, with PTI's full step count: other choices are said in a comment."""
    args = ["stylegan", "edit", "--network", network_source, "--photo", photo_name, "--space", inverted.space,
            "--project-steps", str(inverted.steps)]
    if inverted.pti_steps:
        args.append("--pti")
    for e in edits or ["sefa:0:0.0"]:          # the command needs an edit: strength 0 is none
        args += ["--edit", e]
    args += ["--together", *(["--paste-back"] if paste_back_ else []), "--outdir", "edits"]
    notes = []
    if face_index:
        notes.append(f"the page edits face {face_index + 1}; the command edits the largest")
    if inverted.pti_steps and inverted.pti_steps != PTI_STEPS:
        notes.append(f"the page tuned {inverted.pti_steps} steps; --pti tunes {PTI_STEPS}")
    return " ".join(shlex.quote(a) for a in args) + "".join(f"\n# {n}" for n in notes)
