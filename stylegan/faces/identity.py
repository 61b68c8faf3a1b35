"""Identity: dlib's face-recognition network maps a face to a 128-d descriptor; two photos of one
person lie within about 0.6 of each other (dlib's threshold on LFW)."""
from __future__ import annotations

import os

import numpy as np

from .landmarks import model_path

SAME_PERSON = 0.6


class FaceIdentity:
    def __init__(self, model: str | os.PathLike | None = None, predictor: str | os.PathLike | None = None):
        import dlib
        self.net = dlib.face_recognition_model_v1(str(model or model_path("face-id")))
        self.predictor = dlib.shape_predictor(str(predictor or model_path("landmarks-68")))
        self.detector = dlib.get_frontal_face_detector()

    def descriptor(self, image: np.ndarray) -> np.ndarray | None:
        """[H, W, 3] uint8 -> [128] descriptor of the largest face, or None without a face."""
        import dlib
        image = np.ascontiguousarray(image)
        rects = self.detector(image, 1)
        if not rects:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        shape = self.predictor(image, rect)
        return np.asarray(self.net.compute_face_descriptor(image, shape), dtype=np.float64)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float | None:
        """Descriptor distance between the largest faces of two images (None if either has none)."""
        da, db = self.descriptor(a), self.descriptor(b)
        return None if da is None or db is None else float(np.linalg.norm(da - db))
