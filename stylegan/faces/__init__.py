"""Faces in real photos: landmarks, and the FFHQ crop that StyleGAN's face models were trained on."""
from .align import AlignedFace, align_face, align_landmarks, ffhq_quad
from .landmarks import DlibLandmarks, LandmarkDetector, NoFaceError
from .photo import read_photo

__all__ = ["AlignedFace", "align_face", "align_landmarks", "ffhq_quad", "DlibLandmarks", "LandmarkDetector",
           "NoFaceError", "read_photo"]
