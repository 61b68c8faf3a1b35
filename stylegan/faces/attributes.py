"""Face attributes measured from the 68 landmarks: labels for InterFaceGAN and edit reports that
need nothing downloaded. They are geometric proxies, not trained classifiers:

    smile        mouth width / distance between the eye centres
    mouth_open   inner-lip gap / mouth width
    eyes_open    eye aspect ratio (Soukupova & Cech 2016): lid gap / eye width, both eyes
    roll         angle of the line through the eye centres, degrees (positive: clockwise in the image)
    yaw          nose tip offset from the jaw's midline, in jaw widths (roll removed; ~0 frontal)
    pitch        nose tip height between eye line (0) and mouth line (1) (roll removed)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .landmarks import LandmarkDetector

ATTRIBUTES = ("smile", "mouth_open", "eyes_open", "roll", "yaw", "pitch")


def _dist(a, b):
    return float(np.hypot(*(np.asarray(a) - np.asarray(b))))


def _eye_aspect(eye: np.ndarray) -> float:
    return (_dist(eye[1], eye[5]) + _dist(eye[2], eye[4])) / (2 * _dist(eye[0], eye[3]))


def measure(lm: np.ndarray) -> dict[str, float]:
    """Attributes of one face from its [68, 2] landmarks."""
    lm = np.asarray(lm, dtype=np.float64)
    assert lm.shape == (68, 2)
    eye_l, eye_r = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    d = eye_r - eye_l
    roll = np.degrees(np.arctan2(d[1], d[0]))
    # Undo the roll about the eye midpoint, so yaw and pitch read along the face's own axes.
    c, s = np.cos(-np.radians(roll)), np.sin(-np.radians(roll))
    up = (lm - (eye_l + eye_r) / 2) @ np.array([[c, s], [-s, c]])
    mouth_width = _dist(lm[48], lm[54])
    jaw_l, jaw_r, nose = up[0], up[16], up[30]
    mouth_y = (up[48, 1] + up[54, 1]) / 2
    return {
        "smile": mouth_width / _dist(eye_l, eye_r),
        "mouth_open": float(np.mean([_dist(lm[61 + i], lm[67 - i]) for i in range(3)])) / mouth_width,
        "eyes_open": (_eye_aspect(lm[36:42]) + _eye_aspect(lm[42:48])) / 2,
        "roll": float(roll),
        "yaw": float((nose[0] - (jaw_l[0] + jaw_r[0]) / 2) / (jaw_r[0] - jaw_l[0])),
        "pitch": float(nose[1] / mouth_y),
    }


class FaceAttributes:
    """image -> attributes of its largest face (all nan when there is none)."""

    def __init__(self, detector: LandmarkDetector | None = None):
        if detector is None:
            from .landmarks import DlibLandmarks
            detector = DlibLandmarks()
        self.detector = detector

    def __call__(self, image: np.ndarray) -> dict[str, float]:
        faces = self.detector(image)
        return measure(faces[0]) if faces else {k: float("nan") for k in ATTRIBUTES}

    def scorer(self, name: str) -> Callable[[np.ndarray], float]:
        if name not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {name!r}: expected one of {', '.join(ATTRIBUTES)}")
        return lambda image: self(image)[name]
