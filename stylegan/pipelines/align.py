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

from .._files import atomic_output, sweep_stale_temps
from ..progress import Progress, ProgressFn, emit
from ..faces import AlignedFace, LandmarkDetector, NoFaceError, align_face, read_photo
from ..provenance import Provenance, file_digest
from .writer import save_image

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
RECORD_SUFFIX = ".align.json"


@dataclass
class AlignSummary:
    written: list[Path] = field(default_factory=list)      # crops written
    skipped: list[Path] = field(default_factory=list)      # crops already present
    failed: dict[str, str] = field(default_factory=dict)   # photo -> one-line reason


def find_photos(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, folders expanded to their image files (sorted, not recursive)."""
    photos: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            photos += sorted(c for c in p.iterdir() if c.suffix.lower() in PHOTO_SUFFIXES and c.is_file())
        else:
            photos.append(p)
    return photos


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
                 overwrite: bool = False, progress: ProgressFn | None = None) -> AlignSummary:
    """Align every photo into `outdir` (FFHQ's exact recipe; `refine`: see faces.align_face). A photo
    that fails (unreadable, no face) is recorded in the summary and the others carry on; crops
    already present are skipped unless `overwrite`. `progress` gets a Progress('align') per photo
    (item: the photo's name)."""
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
        first = outdir / f"{crop_name(photo, 0 if all_faces else None)}.png"
        if stems.setdefault(photo.stem, photo) != photo:   # a.jpg and a.png would write the same crop
            summary.failed[str(photo)] = f"same name as {stems[photo.stem]}: its crop would be overwritten"
        elif first.exists() and not overwrite:
            summary.skipped.append(first)
        else:
            try:
                image = read_photo(photo)
                faces = align_face(image, detector, size=size, all_faces=all_faces, refine=refine)
            except NoFaceError:
                summary.failed[str(photo)] = "no face found"
            except ValueError as e:
                summary.failed[str(photo)] = str(e)
            else:
                # The crop is the photo's own pixels: its metadata says so and claims nothing else.
                made = Provenance(kind="photo", operation="align", photo=file_digest(photo))
                for i, face in enumerate(faces):
                    name = crop_name(photo, i if all_faces else None)
                    write_record(face, photo, image.shape, outdir / f"{name}{RECORD_SUFFIX}", refine)
                    save_image(face.image, outdir / f"{name}.png", made)   # last: its presence means "done"
                    summary.written.append(outdir / f"{name}.png")
        emit(progress, Progress("align", k + 1, len(photos), item=photo.name, seconds=time.monotonic() - start))
    return summary
