"""Photos -> FFHQ-aligned face crops, each with a record of where it came from in its photo.

For photo `NAME.ext` the crop is `NAME.png` (`NAME_01.png`, `NAME_02.png`, ... with every face,
largest first) and its record `NAME.align.json`: the source photo, the crop's quad in the photo and
the landmarks, so an edited crop can be pasted back into the original."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._errors import without_prefix
from ..io.files import all_or_none, atomic_output, is_complete, is_regular_file, name_fits, sweep_stale_temps
from ..faces import AlignedFace, LandmarkDetector, NoFaceError, align_face
from ..faces.photo import MAX_PIXELS, read_photo
from ..progress import Progress, ProgressFn, emit
from ..provenance import Provenance, file_digest
from ..io.image_files import save_image

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
RECORD_SUFFIX = ".align.json"


@dataclass
class AlignSummary:
    written: list[Path] = field(default_factory=list)      # crops written
    skipped: list[Path] = field(default_factory=list)      # crops already present
    failed: dict[str, ValueError] = field(default_factory=dict)   # photo -> its one-line error


def find_photos(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, folders expanded to their image files (sorted, not recursive)."""
    photos: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            photos += sorted(c for c in p.iterdir() if c.suffix.lower() in PHOTO_SUFFIXES and is_regular_file(c))
        else:
            photos.append(p)
    return photos


def _aligned(outdir: Path, name: str) -> bool:
    """A crop is done when its image is whole and its record reads."""
    try:
        return is_complete(outdir / f"{name}.png") and bool(read_record(outdir / f"{name}{RECORD_SUFFIX}"))
    except ValueError:
        return False


def crop_name(photo: Path, index: int | None) -> str:
    return photo.stem if index is None else f"{photo.stem}_{index + 1:02d}"


def write_record(face: AlignedFace, photo: Path, photo_shape: Sequence[int], path: Path,
                 refined: bool = False) -> None:
    record = {"recipe": "ffhq", "refined": refined, "source": str(photo.resolve()),
              "source_size": [photo_shape[1], photo_shape[0]], "size": face.size, "quad": face.quad.tolist(),
              "landmarks": face.landmarks.tolist()}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))


def read_record(path: str | os.PathLike) -> dict:
    """An `.align.json` record, with `quad` and `landmarks` as arrays."""
    try:
        record = json.loads(Path(path).read_text())
        record["quad"] = np.asarray(record["quad"], dtype=np.float64).reshape(4, 2)
        record["landmarks"] = np.asarray(record["landmarks"], dtype=np.float64).reshape(68, 2)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not an alignment record ({type(e).__name__})") from None
    return record


def align_photos(inputs: Iterable[str | os.PathLike], outdir: str | os.PathLike, *, size: int = 1024,
                 all_faces: bool = False, refine: bool = False, detector: LandmarkDetector | None = None,
                 overwrite: bool = False, max_pixels: int = MAX_PIXELS,
                 progress: ProgressFn | None = None) -> AlignSummary:
    """Align every photo into `outdir` (FFHQ's exact recipe; `refine`: see faces.align_face). A photo
    that fails (unreadable, past `max_pixels`, no face, a name the file system cannot hold) is
    recorded in the summary and the others carry on; crops already present (whole, with their
    record) are skipped unless `overwrite`. A crop and its record appear together or not at all; a
    disk that fills stops the run with a WriteError (one line). `progress` gets a Progress('align')
    per photo (item: the photo's name)."""
    from ..faces.landmarks import DlibLandmarks
    photos = find_photos(inputs)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(outdir)
    detector = detector or DlibLandmarks()
    summary = AlignSummary()
    stems: dict[str, Path] = {}
    start = time.monotonic()
    for k, photo in enumerate(photos):
        first = crop_name(photo, 0 if all_faces else None)
        if stems.setdefault(photo.stem, photo) != photo:   # a.jpg and a.png would write the same crop
            summary.failed[str(photo)] = ValueError(f"same name as {stems[photo.stem]}: its crop would be overwritten")
        elif _aligned(outdir, first) and not overwrite:
            summary.skipped.append(outdir / f"{first}.png")
        elif not name_fits(outdir / f"{crop_name(photo, 99 if all_faces else None)}{RECORD_SUFFIX}"):
            summary.failed[str(photo)] = ValueError("its crop's file name is too long for the file system")
        else:
            try:
                image = read_photo(photo, max_pixels=max_pixels)
                faces = align_face(image, detector, size=size, all_faces=all_faces, refine=refine)
            except NoFaceError:
                summary.failed[str(photo)] = ValueError("no face found")
            except ValueError as e:
                summary.failed[str(photo)] = without_prefix(e, f"{photo}: ")   # the photo is named once
            else:
                # The crop is the photo's own pixels: its metadata says so and claims nothing else.
                made = Provenance(kind="photo", operation="align", photo=file_digest(photo))
                for i, face in enumerate(faces):
                    name = crop_name(photo, i if all_faces else None)
                    with all_or_none() as group:
                        write_record(face, photo, image.shape, group.add(outdir / f"{name}{RECORD_SUFFIX}"), refine)
                        save_image(face.image, group.add(outdir / f"{name}.png"), made)
                    summary.written.append(outdir / f"{name}.png")
        emit(progress, Progress("align", k + 1, len(photos), item=photo.name, seconds=time.monotonic() - start))
    return summary
