"""Facial landmarks behind one small interface: an image in, 68 iBUG points per face out.

`LandmarkDetector` is all the alignment needs, so another landmark source (a different detector, a
user's own model, landmarks read from a file) drops in by being a callable with that signature.
The bundled implementation is dlib's HOG face detector plus its 68-point shape predictor, whose
training data (iBUG 300-W) is licensed for non-commercial use only."""
from __future__ import annotations

import os
from typing import Protocol, Sequence

import numpy as np

# Photos are searched for faces at most this large (long side); landmarks are then fitted at full size.
# The detector's box decides where the landmark fit starts, and it varies with the scale it is found
# at: on a 3072x3600 photo the landmarks, and so the FFHQ crop, move by 1.2 % of the crop's side from
# a search at full size, which takes three times as long and lands 2.5 % off the crop of the same
# photo at 512 px (ours: 0.7 %).
DETECT_MAX_SIDE = 1600


class NoFaceError(ValueError):
    """No face was found in a photo."""


class LandmarkDetector(Protocol):
    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        """[H, W, 3] uint8 RGB -> one [68, 2] float array (x, y in pixels) per face, largest face first."""


class DlibLandmarks:
    """dlib's frontal face detector (HOG, or the CNN 'mmod' detector) + the 68-point shape predictor."""

    def __init__(self, predictor_path: str | os.PathLike | None = None, detector: str = "hog",
                 cnn_detector_path: str | os.PathLike | None = None, min_score: float = 0.3):
        import dlib
        if detector not in ("hog", "cnn"):
            raise ValueError(f"unknown face detector {detector!r}: expected 'hog' or 'cnn'")
        self.predictor = dlib.shape_predictor(str(predictor_path or model_path("landmarks-68")))
        self.detector = detector
        self.min_score = min_score
        if detector == "hog":
            self._hog = dlib.get_frontal_face_detector()
        else:
            self._cnn = dlib.cnn_face_detection_model_v1(str(cnn_detector_path or model_path("face-detector-cnn")))

    def faces(self, image: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Face boxes (left, top, right, bottom, score) in image pixels, largest first."""
        image = np.ascontiguousarray(image)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        scale = min(1.0, DETECT_MAX_SIDE / max(image.shape[:2]))
        small = image if scale == 1.0 else _resize(image, scale)
        upsample = 1 if max(small.shape[:2]) < 1024 else 0   # small faces in small photos need it
        if self.detector == "hog":
            rects, scores, _ = self._hog.run(small, upsample, 0.0)
            boxes = [(r.left(), r.top(), r.right(), r.bottom(), s) for r, s in zip(rects, scores)]
        else:
            boxes = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence)
                     for d in self._cnn(small, upsample)]
        # Weak detections are dropped when a confident one exists (HOG finds faces in textures too).
        if any(b[4] >= self.min_score for b in boxes):
            boxes = [b for b in boxes if b[4] >= self.min_score]
        boxes = [(l / scale, t / scale, r / scale, b / scale, s) for l, t, r, b, s in boxes]
        return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        import dlib
        image = np.ascontiguousarray(image)
        out = []
        for left, top, right, bottom, _ in self.faces(image):
            rect = dlib.rectangle(int(round(left)), int(round(top)), int(round(right)), int(round(bottom)))
            shape = self.predictor(image, rect)
            out.append(np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64))
        return out


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    from PIL import Image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def packaged_model(kind: str) -> str | None:
    """Path of a dlib model file inside the installed `face-recognition-models` package, or None
    (found by the hub without importing the package)."""
    from .. import hub
    path = hub.packaged(hub.lookup(_ASSETS[kind]))
    return None if path is None else str(path)


# model_path kinds -> registry names.
_ASSETS = {"landmarks-68": "dlib-landmarks-68", "face-detector-cnn": "dlib-face-detector", "face-id": "dlib-face-id"}


def model_path(kind: str) -> str:
    """A local path for one of dlib's model files: the packaged copy, else a download into the cache."""
    from .. import hub
    return str(hub.fetch(hub.lookup(_ASSETS[kind])))   # by name only: a file in the cwd must not stand in


def largest(faces: Sequence[np.ndarray]) -> np.ndarray:
    if not faces:
        raise NoFaceError("no face found")
    return faces[0]
