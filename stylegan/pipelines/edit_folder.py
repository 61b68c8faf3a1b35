"""`stylegan edit` as one library call: seeds, latent files or a photo, moved along edits into a folder.

    inputs = seed_inputs_for(G, [0, 1, 2], psi=0.7)        # or latent_inputs_for(G, files), photo_inputs(...)
    result = edit_into_folder(G, inputs, [parse_edit("sefa:2@0-3:-5..5")], "edits/", grid=True)

Strips (NAME_EDIT.png, with --video and --grid) are written by `write_edits`, so the folder resumes;
`together` writes one image per input with every edit applied at once (NAME_edits.png). A photo's
projection is kept in the folder (`PhotoFolder`) so a later edit of the same photo with the same
settings starts from it; with `paste_back` each edited face goes back into the photo. `report`
measures the strips as written (report.csv)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .._errors import exists_error
from ..io.image_files import save_image
from ..io.run_record import check_run_record, prepare_outdir
from ..progress import ProgressFn
from ..provenance import Provenance, file_digest
from .edit import (GROWS, EditSpec, EditSummary, edit_settings, latent_inputs, moves, pending, read_strip,
                   render_together, resolve_direction, seed_inputs, write_edits)
from .edit_report import EditMeasures, EditReport, face_region, write_report
from .generate import input_transform
from .photo import PhotoProjection, check_edits, load_projection, paste_faces, photo_settings, project_photo, \
    save_projection


@dataclass
class EditInputs:
    """What an edit folder edits: latents ws [N, num_ws, w_dim] (None for a photo, until projected),
    their names, what makes each (the run record's 'inputs') and what each one's images say of it
    (Provenance fields, added to the run's provenance)."""
    ws: torch.Tensor | None
    names: list[str]
    made: dict[str, dict]
    facts: list[dict]
    warnings: list[str] = field(default_factory=list)     # for the caller to show (latents of another network)
    photo: PhotoFolder | None = None
    transform: np.ndarray | None = None                     # StyleGAN3's input transform (seeds, latents)


def seed_inputs_for(G: torch.nn.Module, seeds: Sequence[int], psi: float = 0.7, class_idx: int | None = None,
                    noise_mode: str = "const", transform: np.ndarray | None = None) -> EditInputs:
    ws, names, made = seed_inputs(G, seeds, psi, class_idx=class_idx)
    posed = {} if transform is None else {"transform": np.asarray(transform).tolist()}
    facts = [dict(seed=int(s), psi=psi, class_idx=class_idx, noise_mode=noise_mode, details=posed) for s in seeds]
    return EditInputs(ws, names, made, facts, transform=transform)


def latent_inputs_for(G: torch.nn.Module, paths: Sequence[str | os.PathLike], noise_mode: str = "const",
                      force: bool = False, digest: str | None = None,
                      transform: np.ndarray | None = None) -> EditInputs:
    ws, names, made, warnings = latent_inputs(G, paths, force, digest)
    facts = [dict(latent=made[n]["latent"], noise_mode=noise_mode) for n in names]
    return EditInputs(ws, names, made, facts, warnings, transform=transform)


class PhotoFolder:
    """A photo to edit into `outdir`: read (within `max_pixels`), its edits checked against G before
    anything slow, and its projection: the one the folder keeps when made with the same settings,
    else made now and kept at once (an interrupted edit does not cost the projection).

    `loss` names the projection's loss for the record ('auto', a registry name, a file's absolute
    path); `loss_factory()` makes it, only when a projection is made. `detector`: the landmark
    detector (default dlib's), as `find_faces` takes it."""

    def __init__(self, G: torch.nn.Module, photo: str | os.PathLike, specs: Sequence[EditSpec],
                 outdir: str | os.PathLike, *, loss: str, loss_factory: Callable[[], object], face: int = 0,
                 space: str = "w", steps: int = 1000, pti: bool = False, pti_steps: int = 350, seed: int = 303,
                 paste_back: bool = False, force: bool = False, max_pixels: int | None = None,
                 cache: dict | None = None, detector=None):
        from ..faces import read_photo
        self.G, self.path, self.outdir, self.specs = G, Path(photo), Path(outdir), list(specs)
        self.image = read_photo(photo, max_pixels=max_pixels)
        self.name = self.path.stem
        self.cache = {} if cache is None else cache
        check_edits(G, specs, self.cache, force)        # a bad edit stops here, not after the projection
        self.settings = photo_settings(G, self.image, face=face, space=space, steps=steps, seed=seed, loss=loss,
                                       pti_steps=pti_steps if pti else 0)
        self.project_kwargs = dict(face=face, space=space, steps=steps, pti=pti, pti_steps=pti_steps, seed=seed,
                                   detector=detector)
        self.loss_factory, self.paste_back = loss_factory, paste_back
        self.projection: PhotoProjection | None = None
        self.reused: Path | None = None                 # the kept latent the projection was read from

    def inputs(self) -> EditInputs:
        fact = dict(photo=file_digest(self.path),
                    details={"projection": self.settings["space"], "pti": bool(self.settings["pti_steps"])})
        return EditInputs(None, [self.name], {self.name: {"projection": self.settings}}, [fact], photo=self)

    def kept(self, overwrite: bool = False) -> PhotoProjection | None:
        """The projection the folder keeps for these settings, or None. Kept with other settings:
        RunMismatchError naming them and the kept latent."""
        return None if overwrite else load_projection(self.G, self.outdir, self.name, self.settings)

    def make(self, kept: PhotoProjection | None, progress: ProgressFn | None, provenance: Provenance) -> PhotoProjection:
        """The projection: `kept` (read from the folder) or made now and kept at once."""
        if kept is None:
            _, kept = project_photo(self.G, self.image, loss=self.loss_factory(), progress=progress,
                                    **self.project_kwargs)
            save_projection(kept, self.outdir, self.name, self.settings, self.image.shape, source=self.path,
                            provenance=provenance)
        else:
            self.reused = self.outdir / f"{self.name}.w.safetensors"
        self.projection = kept
        return kept

    def paste(self, frames: np.ndarray, i: int = 0) -> np.ndarray:
        return paste_faces(self.image, self.projection.face, frames)


@dataclass
class EditFolderResult:
    summary: EditSummary | None = None          # the strips (None with together)
    together: list[Path] = field(default_factory=list)
    report_notes: list[str] = field(default_factory=list)   # why a report column is blank


def edit_into_folder(G: torch.nn.Module, inputs: EditInputs, specs: Sequence[EditSpec], outdir: str | os.PathLike,
                     *, together: bool = False, grid: bool = False, video: bool = False, report: bool = False,
                     noise_mode: str = "const", overwrite: bool = False, force: bool = False,
                     digest: str | None = None, provenance: Provenance | None = None,
                     progress: ProgressFn | None = None) -> EditFolderResult:
    """Each input moved along each edit into `outdir` (see the module doc). `digest` is G's, if
    already known. Every image carries `provenance` (watermark, signer, network source) with what
    made its input and its edit. Settings that differ from the folder's: RunMismatchError (unless
    `overwrite`)."""
    from torch_utils.misc import network_digest
    if together and (grid or video or report):
        raise ValueError("edits applied together make one image per input: no grid, video or report")
    digest = digest or network_digest(G)
    made = (provenance or Provenance()).with_(operation="edit", network=digest)
    origins = [made.with_(**fact) for fact in inputs.facts]
    photo = inputs.photo
    if together:
        return EditFolderResult(together=_write_together(G, inputs, specs, Path(outdir), origins, noise_mode,
                                                         overwrite, force, progress))
    settings = edit_settings(digest, specs, inputs.made,
                             extra={"paste_back": photo.paste_back} if photo is not None else None)
    edit_G, ws, finish = G, inputs.ws, None
    if photo is not None:
        # The kept projection, then the folder's record, are checked before minutes of projection.
        kept = photo.kept(overwrite)
        check_run_record(prepare_outdir(outdir), settings, overwrite, "*.png", grows=GROWS)
        if report or pending(outdir, inputs.names, specs, video, overwrite):    # else every strip is on disk
            p = photo.make(kept, progress, origins[0])
            edit_G, ws = p.G, p.ws
        finish = photo.paste if photo.paste_back else None
    with input_transform(edit_G, inputs.transform if photo is None else None):
        summary = write_edits(edit_G, ws, inputs.names, specs, outdir, settings=settings, noise_mode=noise_mode,
                              video=video, grid=grid, overwrite=overwrite, force=force, digest=digest,
                              finish=finish, cache=photo.cache if photo is not None else None, provenance=made,
                              origins=origins, progress=progress)
    result = EditFolderResult(summary)
    if report:
        result.report_notes = report_strips(Path(outdir), inputs.names, specs, photo)
    return result


def _write_together(G, inputs: EditInputs, specs, outdir: Path, origins, noise_mode, overwrite, force, progress):
    """Every edit at once, one image per input (NAME_edits.png; a photo's pasted back with
    paste_back). One image each and no run record: an existing output stops the run."""
    photo = inputs.photo
    cache = {} if photo is None else photo.cache
    for spec in specs:                  # checked (and files read) before anything slow
        resolve_direction(spec, G, cache, force)
    moves(G, specs, cache)
    paths = [outdir / f"{name}_edits.png" for name in inputs.names]
    for path in paths:
        if path.exists() and not overwrite:
            raise exists_error(path)
    applied = tuple((s.label, s.strengths[0]) for s in specs)
    if photo is not None:
        p = photo.make(photo.kept(overwrite), progress, origins[0])
        images = render_together(p.G, p.ws, specs, cache=cache)
        if photo.paste_back:
            images = photo.paste(images)
            origins = [origins[0].with_(kind="composite", operation="paste-back")]
    else:
        with input_transform(G, inputs.transform):
            images = render_together(G, inputs.ws, specs, noise_mode, cache=cache)
    prepare_outdir(outdir)
    for image, path, origin in zip(images, paths, origins):
        save_image(image, path, origin.with_(edits=applied))
    return paths


def report_strips(outdir: Path, names: Sequence[str], specs: Sequence[EditSpec],
                  photo: PhotoFolder | None = None) -> list[str]:
    """report.csv, measured on the strips as written: what the user gets (for a photo pasted back,
    the pasted photos inside the face's region only), with a photo's identity distance to the
    person in it. Returns why columns are blank, if any are."""
    measures, report = EditMeasures(), EditReport()
    for spec in specs:
        for name in names:
            frames = read_strip(outdir / f"{name}_{spec.label}.png", len(spec.strengths))
            if photo is None:
                report.extend(measures.rows(name, spec, frames))
            elif photo.paste_back:
                ref, *crops = face_region(photo.projection.face, np.concatenate([photo.image[None], frames]))
                report.extend(measures.rows(name, spec, np.stack(crops), ref))
            else:
                report.extend(measures.rows(name, spec, frames, photo.projection.face.image))
    write_report(outdir / "report.csv", report.rows)
    return list(report.notes)
