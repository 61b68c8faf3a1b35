"""A photo through the whole story: find its faces, project one, edit it, put it back.

In one call:

    out = stylegan.edit_photo(G, "me.jpg", ["smile.direction:-2,0,2"], pti=True, paste_back=True)
    out.crops[0]       # [3, R, R, 3] uint8: the face at strengths -2, 0 and 2
    out.pasted[0]      # [3, H, W, 3] uint8: each of them back in the photo

or step by step, the way an interactive page goes (each step reuses the ones before it):

    photo = read_photo("me.jpg")                          # [H, W, 3] uint8
    faces = find_faces(photo)                             # every face, largest first, FFHQ-aligned
    proj = project_face(G, faces[0], pti=True, progress=show)   # the slow part, once per face
    crops = edit_face(proj, "smile.direction:0.5")        # [1, R, R, 3]: as often as a slider moves
    both = edit_face(proj, ["smile.direction:0.5", "sefa:2@0-3:-1"], together=True)  # [1, R, R, 3]: at once
    pasted = paste_faces(photo, proj.face, crops)         # [1, H, W, 3]

(`project_photo` is find_faces + project_face for face number K; `edit_photo(..., projection=proj)`
does the rest with a projection made earlier.)

The target is prepared, projected and tuned by `project`'s own pieces (prepare_target,
project, pivotal_tuning, the same defaults), so for the same photo and settings the latent is
the one `stylegan align` + `stylegan project` find. The face is aligned at FFHQ's 1024 px and
brought to the generator's resolution as `project` brings any target. Edits are rendered by the
generator the projection leaves: the tuned one with pivotal tuning, else a copy of G holding the
projection's noise maps (they belong to the reconstruction); strength 0 is that reconstruction.
Directions are found on G itself (SeFa, GANSpace), not on the tuned copy.

Every long step takes `progress` (a ProgressFn: stages 'align', 'project', 'tune', 'edit',
'report', with previews); raising `Cancelled` from it stops the story there. `save_projection` /
`load_projection` keep a projection in a folder, so a later edit of the same photo starts from it."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .._errors import ParamError
from ..editing.apply import shift_styles, shift_ws
from ..faces import AlignedFace, LandmarkDetector, align_face, align_landmarks, read_photo
from ..faces import paste
from ..images import check_uint8, to_uint8
from ..inversion import FeatureNet, ProjectionResult, TuningResult, pivotal_tuning, project, with_noise
from ..inversion.losses import Distance, default_distance
from ..networks.styles import ws_to_styles
from ..progress import Progress, ProgressFn, emit
from ..provenance import Provenance
from .edit import EditSpec, moves, parse_edit, render_edits, render_together, resolve_direction, strip
from .edit_report import EditMeasures, EditReport, face_region
from .project import latent_for_file, prepare_target, video_every

# FFHQ's crop size: faces are aligned at this size (or the generator's, if larger), as `stylegan align` does.
ALIGN_SIZE = 1024


@dataclass
class PhotoProjection:
    """One face of a photo, found in a generator's latent space."""
    face: AlignedFace                  # the aligned crop and where it lies in the photo
    target: np.ndarray                 # [R, R, 3] uint8: the crop at the generator's resolution, as projected
    ws: torch.Tensor                   # [1, num_ws, w_dim]: the latent
    space: str                         # 'w' or 'w+'
    G: torch.nn.Module                 # the generator edits render with: tuned, or G with the projection's noise
    base: torch.nn.Module              # the generator projected into: directions are found on it
    image: np.ndarray                  # [R, R, 3] uint8: G at ws, the reconstruction every edit starts from
    noise: dict[str, torch.Tensor] = field(default_factory=dict)   # the projection's noise maps
    tuned: bool = False                # whether G was tuned to the photo (pivotal tuning)
    projection: ProjectionResult | None = None   # the run itself (None when read back from a folder)
    tuning: TuningResult | None = None
    directions: dict = field(default_factory=dict, repr=False)    # directions resolved so far, reused by edits


@dataclass
class PhotoEdit:
    """What `edit_photo` made."""
    photo: np.ndarray                          # [H, W, 3] uint8
    faces: list[AlignedFace]                   # every face found, largest first
    projection: PhotoProjection                # of the face that was edited
    edits: list[EditSpec]
    crops: list[np.ndarray]                    # per edit [S, R, R, 3] uint8: the face at each strength
    pasted: list[np.ndarray] | None = None     # per edit [S, H, W, 3] uint8: back in the photo (paste_back)
    # (together=True: crops and pasted hold one entry, [1, ...], every edit applied at once)
    report: EditReport | None = None           # attribute and identity changes (report=True)

    @property
    def latent(self) -> torch.Tensor:
        return self.projection.ws

    @property
    def tuned_G(self) -> torch.nn.Module | None:
        return self.projection.G if self.projection.tuned else None


def find_faces(photo: np.ndarray | str | os.PathLike, *, detector: LandmarkDetector | None = None,
               size: int = ALIGN_SIZE) -> list[AlignedFace]:
    """Every face in `photo` ([H, W, 3] uint8 or a file), largest first, cropped the FFHQ way at
    `size` px. Raises NoFaceError (a ValueError) when there is none."""
    photo = _photo(photo)
    return align_face(photo, detector, size=size, all_faces=True)


def project_face(G: torch.nn.Module, face: AlignedFace, *, space: str = "w", steps: int = 1000,
                 loss: Distance | FeatureNet | None = None, seed: int = 303, pti: bool = False,
                 pti_steps: int = 350, progress: ProgressFn | None = None) -> PhotoProjection:
    """Find the latent of an aligned face in G (W or W+), then with `pti` tune a copy of G to it.

    `loss` is what `project` minimises: a Distance or a feature network; None is pixels alone
    (pass `default_distance(nets.D)` for the command line's 'auto'). G itself is not changed."""
    loss = default_distance(None) if loss is None else loss
    target = prepare_target(face.image, G.img_resolution)
    result = project(G, target, loss, space=space, num_steps=steps, seed=seed, progress=progress,
                     preview_every=video_every(steps))
    tuning = None
    if pti:
        tuning = pivotal_tuning(G, target, result, loss, num_steps=pti_steps, seed=seed, progress=progress,
                                preview_every=video_every(pti_steps))
    edit_G = tuning.G if tuning is not None else with_noise(G, result.noise)
    image = tuning.image if tuning is not None else result.image
    return PhotoProjection(face, target, result.ws[None], space, edit_G, G, image, result.noise, pti, result, tuning)


def check_edits(G: torch.nn.Module, edits: Sequence[EditSpec | str], cache: dict | None = None,
                force: bool = False) -> list[EditSpec]:
    """Edits as EditSpecs, each checked against G before any long work: the direction exists and fits,
    was made for G (unless `force`), the component and rows are in range. Directions land in `cache`
    for the edits that follow."""
    specs = [parse_edit(e) if isinstance(e, str) else e for e in edits]
    cache = {} if cache is None else cache
    ws = torch.zeros([1, G.num_ws, G.w_dim], device=next(G.parameters()).device)
    for spec in specs:
        d = resolve_direction(spec, G, cache, force)
        if d.space == "w":
            shift_ws(G, ws, d, 0.0, spec.component, spec.rows)
        else:
            shift_styles(G, ws_to_styles(G, ws), d, 0.0, spec.component)
    return specs


def edit_face(projection: PhotoProjection, edits: Sequence[EditSpec | str] | EditSpec | str,
              progress: ProgressFn | None = None, together: bool = False) -> list[np.ndarray] | np.ndarray:
    """The projected face moved along each edit: per edit [S, R, R, 3] uint8 (one edit given: its
    array). `together`: every edit applied at once, one strength each: [1, R, R, 3] (no edits: the
    reconstruction). Directions are resolved once per projection and reused by later calls."""
    one = isinstance(edits, (str, EditSpec))
    specs = check_edits(projection.base, [edits] if one else edits, projection.directions)
    if together:
        crops = render_together(projection.G, projection.ws, specs, cache=projection.directions)
        emit(progress, Progress("edit", 1, 1, item="together", preview=crops[0]))
        return crops
    crops = []
    for i, spec in enumerate(specs):
        crops.append(render_edits(projection.G, projection.ws, [spec], cache=projection.directions)[0][:, 0])
        emit(progress, Progress("edit", i + 1, len(specs), item=spec.label, preview=strip(crops[-1])))
    return crops[0] if one else crops


def paste_faces(photo: np.ndarray, face: AlignedFace, crops: np.ndarray) -> np.ndarray:
    """Crops [S, R, R, 3] uint8 of one face, each put back into `photo` where the face was: [S, H, W, 3].
    Outside the face's crop the photo is untouched; the crop's border fades into it."""
    photo = check_uint8(photo, "photo")
    return np.stack([paste.paste_back(photo, c, face) for c in check_uint8(crops, "crops", batch=True)])


def edit_photo(G: torch.nn.Module, photo: np.ndarray | str | os.PathLike, edits: Sequence[EditSpec | str], *,
               space: str = "w", steps: int = 1000, pti: bool = False, pti_steps: int = 350,
               loss: Distance | FeatureNet | None = None, seed: int = 303, face: int = 0, paste_back: bool = False,
               report: bool = False, projection: PhotoProjection | None = None,
               detector: LandmarkDetector | None = None, name: str | None = None, force: bool = False,
               together: bool = False,
               progress: ProgressFn | None = None) -> PhotoEdit:
    """Align, project and edit one face of a photo; see the module doc.

    photo        [H, W, 3] uint8, or an image file
    edits        'SOURCE[:K][@ROWS]:STRENGTHS' strings or EditSpecs (pipelines/edit.py), checked
                 against G before anything slow runs
    face         which face, largest first (PhotoEdit.faces lists them all)
    space, steps, loss, seed, pti, pti_steps: the projection and tuning, as in `project_face`
    paste_back   also each edited face put back into the photo
    report       also measure each edit (attribute change, identity distance), needs dlib
    projection   a PhotoProjection of this photo made earlier: reused, nothing is projected
    name         the photo's name in the report (default: the file's stem, else 'photo')
    force        apply direction files made for another network than G (refused otherwise)
    together     every edit applied at once (one strength each): one crop [1, R, R, 3] (and pasted photo)
    progress     Progress events of every stage; raise Cancelled from it to stop
    """
    name = name or (Path(photo).stem if isinstance(photo, (str, os.PathLike)) else "photo")
    photo = _photo(photo)
    directions = {} if projection is None else projection.directions
    specs = check_edits(G, edits, directions, force)
    if together:
        moves(G, specs, directions)                        # one strength each: said now, not after the projection
        if report:
            raise ValueError("edits applied together make one image: there is no strength sweep to report on")
    measures = EditMeasures() if report else None          # dlib missing: said now, not after the projection
    if projection is None:
        faces, projection = project_photo(G, photo, face=face, space=space, steps=steps, loss=loss, seed=seed,
                                          pti=pti, pti_steps=pti_steps, detector=detector, progress=progress)
        projection.directions.update(directions)
    else:
        faces = [projection.face]
    crops = [edit_face(projection, specs, progress, together=True)] if together else \
        edit_face(projection, specs, progress)
    pasted = [paste_faces(photo, projection.face, c) for c in crops] if paste_back else None
    out = PhotoEdit(photo, faces, projection, specs, crops, pasted)
    if measures is not None:
        out.report = measure_photo_edits(out, name=name, measures=measures, progress=progress)
    return out


def project_photo(G: torch.nn.Module, photo: np.ndarray | str | os.PathLike, *, face: int = 0,
                  detector: LandmarkDetector | None = None, faces: Sequence[AlignedFace] | None = None,
                  progress: ProgressFn | None = None, **projection) -> tuple[list[AlignedFace], PhotoProjection]:
    """The first half of edit_photo: every face of the photo (largest first) and the projection of
    face number `face`; `projection` are project_face's settings (space, steps, loss, seed, pti,
    pti_steps). A caller that keeps the projection (save_projection) does it before editing.

    `faces`: the photo's faces as `find_faces` gave them earlier, at any size (a page's thumbnails):
    nothing is detected again, and the chosen face is cropped anew from its landmarks at the size
    projection aligns at, so the result is the one without `faces`."""
    photo = _photo(photo)
    size = max(ALIGN_SIZE, G.img_resolution)
    faces = find_faces(photo, detector=detector, size=size) if faces is None else list(faces)
    if not 0 <= face < len(faces):
        raise ParamError(f"{{face}} {face} asked for, but the photo has {len(faces)} face{'s' * (len(faces) > 1)} "
                         "(0 is the largest)", "face")
    chosen = faces[face]
    if chosen.image.shape[0] != size:
        chosen = align_landmarks(photo, chosen.landmarks, size)
    emit(progress, Progress("align", 1, 1, {"faces": len(faces)}, preview=chosen.image))
    return faces, project_face(G, chosen, progress=progress, **projection)


def measure_photo_edits(result: PhotoEdit, name: str = "photo", measures: EditMeasures | None = None,
                        progress: ProgressFn | None = None) -> EditReport:
    """The report of a PhotoEdit: what the user gets is measured (the pasted photos when there are
    some, only inside the face's region, else the crops), with each result's identity distance to
    the person in the photo."""
    measures, report = measures or EditMeasures(), EditReport()
    face = result.projection.face
    for i, spec in enumerate(result.edits):
        if result.pasted is not None:
            ref, *frames = face_region(face, np.concatenate([result.photo[None], result.pasted[i]]))
            report.extend(measures.rows(name, spec, np.stack(frames), ref))
        else:
            report.extend(measures.rows(name, spec, result.crops[i], face.image))
        emit(progress, Progress("report", i + 1, len(result.edits), item=spec.label))
    return report


def _photo(photo: np.ndarray | str | os.PathLike) -> np.ndarray:
    return read_photo(photo) if isinstance(photo, (str, os.PathLike)) else check_uint8(photo, "photo")


# --- keeping a projection in a folder -------------------------------------------------------------

def photo_settings(G: torch.nn.Module, photo: np.ndarray, *, face: int = 0, space: str = "w", steps: int = 1000,
                   seed: int = 303, loss: str | None = None, pti_steps: int = 0) -> dict:
    """What decides a photo's projection: the network, the photo's pixels, the face, and the
    projection's settings (`loss` a name: the Distance itself has none). A projection kept with
    other settings is not reused."""
    from torch_utils.misc import network_digest
    pixels = hashlib.sha256(f"{list(photo.shape)}".encode() + np.ascontiguousarray(photo).tobytes()).hexdigest()
    return {"network": network_digest(G), "photo": pixels, "face": int(face), "space": space, "steps": int(steps),
            "seed": seed, "loss": loss, "pti_steps": int(pti_steps) if pti_steps > 0 else None}


def projection_files(folder: str | os.PathLike, name: str) -> dict[str, Path]:
    """The files a kept projection NAME is made of. The latent is written last: its presence means
    the rest is there."""
    folder = Path(folder)
    return {"crop": folder / f"{name}_aligned.png", "record": folder / f"{name}_aligned.align.json",
            "image": folder / f"{name}_proj.png", "noise": folder / f"{name}_noise.npz",
            "tuned": folder / f"{name}_pti.stylegan", "latent": folder / f"{name}.w.safetensors"}


def save_projection(projection: PhotoProjection, folder: str | os.PathLike, name: str, settings: dict,
                    photo_shape: Sequence[int], source: str | os.PathLike | None = None,
                    provenance: Provenance | None = None) -> dict[str, Path]:
    """Write a projection for later edits: the aligned crop and its record (as `stylegan align`
    writes them), the reconstruction, the tuned generator (NAME_pti.stylegan: edit it with
    --network NAME_pti.stylegan --latent NAME.w.safetensors) or the projection's noise maps, and
    the latent holding `settings` (photo_settings). Files are replaced whole, and all land or none
    does (a full disk leaves no half projection). The crop says it is the photo's own pixels; the
    reconstruction carries `provenance` (what the caller knows) as synthetic."""
    from torch_utils.misc import network_digest
    from ..io.files import all_or_none, atomic_output
    from ..io.latents import save_latents
    from ..loaders import save
    from .align import write_record
    from ..io.image_files import save_image
    files = projection_files(folder, name)
    extra = {"photo_projection": settings}
    made = (provenance or Provenance()).with_(network=settings["network"])
    with all_or_none() as group:
        write_record(projection.face, Path(source or name), photo_shape, group.add(files["record"]))
        save_image(projection.face.image, group.add(files["crop"]),
                   Provenance(kind="photo", operation="align", photo=made.photo))
        save_image(projection.image, group.add(files["image"]),
                   made.with_(kind="synthetic", operation="project", details={"space": projection.space}))
        if projection.tuned:
            group.add(save({"G_ema": projection.G}, files["tuned"], overwrite=True))
            # The latent drives the tuned copy too (its pivot): saying so lets an edit trust it there.
            extra["network_digests"] = [network_digest(projection.G)]
        else:
            with atomic_output(group.add(files["noise"])) as tmp, open(tmp, "wb") as f:
                np.savez(f, **{k: v.cpu().numpy() for k, v in projection.noise.items()})
        group.add(save_latents(files["latent"], latent_for_file(projection.ws[0], projection.space).cpu(),
                               space=projection.space, network_digest=settings["network"], source=name, extra=extra,
                               overwrite=True))
    return files


def load_projection(G: torch.nn.Module, folder: str | os.PathLike, name: str, settings: dict) -> PhotoProjection | None:
    """The projection `save_projection` kept as NAME in `folder`, None when there is none. Kept
    with other settings: RunMismatchError naming them (the caller may then overwrite it)."""
    from ..editing.apply import as_ws
    from ..io.latents import load_latents
    from ..loaders import load_generator
    from .align import read_record
    from ..io.run_record import RunMismatchError, differences
    files = projection_files(folder, name)
    if not files["latent"].exists():
        return None
    latent = load_latents(files["latent"], num_ws=G.num_ws, w_dim=G.w_dim)
    kept = latent.metadata.get("photo_projection")
    if not isinstance(kept, dict):
        raise ValueError(f"{files['latent']}: not a kept photo projection (no settings in it)")
    diff = differences(kept, settings)
    if diff:
        raise RunMismatchError(files["latent"], diff)
    record = read_record(files["record"])
    face = AlignedFace(read_photo(files["crop"]), record["quad"], record["landmarks"])
    device = next(G.parameters()).device
    ws = as_ws(G, latent.ws).to(device)
    if settings.get("pti_steps"):
        edit_G, noise = load_generator(files["tuned"], device), {}
    else:
        with np.load(files["noise"], allow_pickle=False) as z:
            noise = {k: torch.from_numpy(z[k]) for k in z.files}
        edit_G = with_noise(G, noise)
    with torch.no_grad():
        image = to_uint8(edit_G.synthesis(ws, noise_mode="const"))[0]
    return PhotoProjection(face, prepare_target(face.image, G.img_resolution), ws, latent.space, edit_G, G, image,
                           noise, bool(settings.get("pti_steps")))
