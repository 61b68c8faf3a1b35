"""What an edit did, measured: per strength, the change of every landmark attribute and the identity
distance to the unedited image (and, for a photo, to the person in it).

Both measures need dlib to find a face. Where it finds none (a small network's images, the
region of a photo where the face was) a value cannot be measured: it is left blank, and the
report's `notes` say so, once per column, instead of a table of NaNs without a word."""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io.files import atomic_output
from ..faces.align import AlignedFace
from .edit import EditSpec

ATTRIBUTE_PREFIX = "d_"


@dataclass
class EditReport:
    rows: list[dict] = field(default_factory=list)     # one per input, edit and strength; "" = not measured
    notes: list[str] = field(default_factory=list)     # why columns are blank, one line each

    def extend(self, rows: list[dict]) -> None:
        self.rows += rows
        self.notes = blank_notes(self.rows)


class EditMeasures:
    """dlib's landmarks (attributes) and face-recognition network (identity), loaded once."""

    def __init__(self):
        try:
            from ..faces.attributes import FaceAttributes
            from ..faces.identity import FaceIdentity
            self.attributes, self.identity = FaceAttributes(), FaceIdentity()
        except (ImportError, RuntimeError):
            raise ValueError("an edit report needs dlib and its face models: pip install 'stylegan[faces]'") from None

    def rows(self, name: str, spec: EditSpec, images: np.ndarray, photo: np.ndarray | None = None) -> list[dict]:
        """Rows for `images` [S, H, W, 3] uint8, the input at each of the spec's strengths, against
        the one nearest strength 0; with `photo` ([H, W, 3] uint8), also each one's identity
        distance to it."""
        from ..faces.attributes import ATTRIBUTES
        zero = int(np.argmin(np.abs(spec.strengths)))
        base = self.attributes(images[zero])
        base_id = self.identity.descriptor(images[zero])
        photo_id = None if photo is None else self.identity.descriptor(photo)
        rows = []
        for strength, img in zip(spec.strengths, images):
            a = self.attributes(img)
            d = self.identity.descriptor(img)
            row = {"input": name, "edit": spec.label, "strength": strength, "identity_distance": _distance(d, base_id)}
            if photo is not None:
                row["identity_to_photo"] = _distance(d, photo_id)
            row.update({f"{ATTRIBUTE_PREFIX}{k}": _number(a[k] - base[k]) for k in ATTRIBUTES})
            rows.append(row)
        return rows


def _distance(a: np.ndarray | None, b: np.ndarray | None) -> str:
    return "" if a is None or b is None else f"{np.linalg.norm(a - b):.4f}"


def _number(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.4f}"


def blank_notes(rows: list[dict]) -> list[str]:
    """One line per column kind that is blank somewhere, saying how often and why."""
    if not rows:
        return []
    n = len(rows)
    notes = []
    no_attrs = sum(any(v == "" for k, v in r.items() if k.startswith(ATTRIBUTE_PREFIX)) for r in rows)
    if no_attrs:
        notes.append(f"attribute columns blank in {no_attrs} of {n} rows: dlib found no face in that image or in "
                     "the unedited one (faces under ~40 px, e.g. a small network's, are not found)")
    no_id = sum(r["identity_distance"] == "" for r in rows)
    if no_id:
        notes.append(f"identity_distance blank in {no_id} of {n} rows: no face found in that image or in the "
                     "unedited one")
    no_photo = sum(r.get("identity_to_photo") == "" for r in rows)
    if no_photo:
        notes.append(f"identity_to_photo blank in {no_photo} of {n} rows: no face found in the result or in the "
                     "photo's face region")
    return notes


def face_region(face: AlignedFace, images: np.ndarray) -> np.ndarray:
    """The part of photo-sized images [N, H, W, C] inside the aligned face's crop quad (clipped to
    the photo): what a measure of a pasted-back face looks at, so that no other face in the photo
    (or a false detection elsewhere) stands in for it."""
    h, w = images[0].shape[:2]
    (x0, y0), (x1, y1) = np.floor(face.quad.min(0)).astype(int), np.ceil(face.quad.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return np.stack([np.ascontiguousarray(im[y0:y1, x0:x1]) for im in images])


def write_report(path: str | os.PathLike, rows: list[dict]) -> None:
    """report.csv, atomically; nothing for no rows."""
    if not rows:
        return
    with atomic_output(Path(path)) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
