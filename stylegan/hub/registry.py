"""The one registry of everything the toolkit can download: GAN networks and the assets that
projection, editing and the metrics use (perceptual networks, the metrics' Inception, dlib's landmark,
face-detector and face-id models, latent directions).

`size` and `sha256` describe the file the URL serves and stay None unless confirmed from a trustworthy
source: a wrong checksum would make every download fail, a missing one only skips a check. A sha256
prefix (torch.hub names its files by one) checks that much of the digest. A TorchScript file's whole
sha256 is also how it is recognised without running it (loaders/torchscript.py): NVIDIA's metric
networks' digests are the ones published beside their URLs by projects that pin them (genforce's
perceptual model for vgg16.pt; a pinned Clean-FID setup for inception-2015-12-05.pt).
GAN file names and URLs follow the READMEs of NVlabs/stylegan2, NVlabs/stylegan2-ada-pytorch and
NVlabs/stylegan3; the dlib models' provenance and terms follow the README of davisking/dlib-models;
the directions are files of danielroich/PTI, pinned to one commit (size and sha256 of those blobs).

Licences: every NVIDIA network here is for non-commercial use only, and training data carry their own
terms on top (FFHQ is CC BY-NC-SA 4.0). dlib's 68-point landmark model is trained on iBUG 300-W, whose
licence excludes commercial use; dlib's face detector and face-id models are in the public domain.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Optional

KINDS = ("gan", "perceptual", "detector", "landmarks", "face-detector", "face-id", "direction")
# 'state-dict': a torch.save'd dict of tensors; 'e4e-pt': a torch.save'd [1, w_dim] direction tensor or
# {'mean', 'comp', 'std'} PCA dict, as encoder4editing and PTI share them. Both load with weights_only.
FORMATS = ("nvidia-pickle", "tf-pickle", "torchscript", "state-dict", "dlib", "e4e-pt")

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
LICENCE_TORCHVISION = "BSD-3-Clause (torchvision); ImageNet's terms may bind the weights"
LICENCE_URL_TORCHVISION = "https://github.com/pytorch/vision/blob/main/LICENSE"
LICENCE_LPIPS = "BSD-2-Clause (lpips)"
LICENCE_URL_LPIPS = "https://github.com/richzhang/PerceptualSimilarity/blob/master/LICENSE"
LICENCE_TF_INCEPTION = "Apache-2.0 (TensorFlow's inception-2015-12-05 weights)"
LICENCE_URL_TF_INCEPTION = "https://github.com/tensorflow/models/blob/master/LICENSE"
LICENCE_PTI = "MIT (PTI)"
LICENCE_URL_PTI = "https://github.com/danielroich/PTI/blob/main/LICENSE"

ADA_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
NGC_SG2_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
NGC_SG3_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
TF_SG2_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
DLIB_BASE = "http://dlib.net/files/"
LPIPS_BASE = "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/"
PTI_BASE = "https://raw.githubusercontent.com/danielroich/PTI/da94d59d15d94822e95840ab5a0aa9ba1a19c851/editings/"


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
    # direction only: the GAN (registry name) whose latent space it lives in
    network: Optional[str] = None
    # A copy another install may already hold, used before downloading: (package, path inside it) of a
    # pip package that ships the file, and whether torch.hub's checkpoint folder may hold it by its file name.
    packaged: Optional[tuple[str, str]] = None
    torch_hub: bool = False

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


def _dlib(name: str, kind: str, file: str, licence: str, licence_url: str, description: str) -> Entry:
    # `face-recognition-models` on PyPI ships all three, decompressed, in its models/ folder.
    return Entry(name, kind, f"{DLIB_BASE}{file}.bz2", licence, licence_url, description, format="dlib",
                 packaged=("face_recognition_models", f"models/{file}"))


def _pti(name: str, file: str, size: int, sha256: str, description: str) -> Entry:
    return Entry(name, "direction", f"{PTI_BASE}{file}", LICENCE_PTI, LICENCE_URL_PTI, description,
                 size=size, sha256=sha256, format="e4e-pt", network="stylegan2-ada-ffhq")


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
    # Recognised by sha256 and read as tensors, never run.
    Entry("vgg16", "perceptual", f"{ADA_BASE}metrics/vgg16.pt", LICENCE_PT, LICENCE_URL_ADA,
          "LPIPS VGG16 feature network (TorchScript) of NVIDIA's projector and metrics (PR, PPL)",
          format="torchscript", size=553_469_545,
          sha256="b437eb095feaeb0b83eb3fa11200ebca4548ee39a07fb944a417ddc516cc07c3"),
    # LPIPS the way the `lpips` package builds it: torchvision's ImageNet VGG16 trunk + the v0.1 linear layers.
    Entry("torchvision-vgg16", "perceptual", "https://download.pytorch.org/models/vgg16-397923af.pth",
          LICENCE_TORCHVISION, LICENCE_URL_TORCHVISION, "VGG16 ImageNet weights (torchvision), the LPIPS trunk",
          sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0", format="state-dict",
          torch_hub=True),
    Entry("lpips-vgg-v0.1", "perceptual", f"{LPIPS_BASE}v0.1/vgg.pth", LICENCE_LPIPS, LICENCE_URL_LPIPS,
          "LPIPS v0.1 linear layers over VGG16 features", format="state-dict",
          packaged=("lpips", "weights/v0.1/vgg.pth")),
    # The Inception-v3 of FID, KID and IS (TF's inception-2015-12-05 graph): NVIDIA's TorchScript translation
    # (read as data by stylegan.metrics) and pytorch-fid's state dict of the same weights. Sizes and sha256
    # are the ones projects that download these files pin (pytorch-fid's torch.hub name carries the prefix
    # 6726825d).
    Entry("inception-2015-12-05", "detector", f"{ADA_BASE}metrics/inception-2015-12-05.pt", LICENCE_TF_INCEPTION,
          LICENCE_URL_TF_INCEPTION, "Inception-v3 of FID/KID/IS, NVIDIA's TorchScript (the metrics' default)",
          format="torchscript", size=95_607_719,
          sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"),
    Entry("pt-inception-2015-12-05", "detector",
          "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
          LICENCE_TF_INCEPTION, LICENCE_URL_TF_INCEPTION, "the same Inception weights as pytorch-fid ships them",
          size=95628359, sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
          format="state-dict", torch_hub=True),
    # dlib's models, also shipped by the `face-recognition-models` package (found there first).
    _dlib("dlib-landmarks-68", "landmarks", "shape_predictor_68_face_landmarks.dat", LICENCE_IBUG, LICENCE_URL_IBUG,
          "68-point face landmarks; NON-COMMERCIAL use only: trained on iBUG 300-W"),
    _dlib("dlib-face-detector", "face-detector", "mmod_human_face_detector.dat", LICENCE_DLIB, LICENCE_URL_DLIB,
          "CNN (MMOD) face detector"),
    _dlib("dlib-face-id", "face-id", "dlib_face_recognition_resnet_model_v1.dat", LICENCE_DLIB, LICENCE_URL_DLIB,
          "ResNet face descriptor (128-d) for identity similarity"),
    # Directions in the W space of stylegan2-ada-ffhq that encoder4editing found and PTI ships.
    _pti("interfacegan-ffhq-age", "interfacegan_directions/age.pt", 2808,
         "50074516b1629707d89b5e43d6b8abd1792212fa3b961a87a11323d6a5222ae0", "InterFaceGAN age direction, W"),
    _pti("interfacegan-ffhq-smile", "interfacegan_directions/smile.pt", 2808,
         "817a7e732b59dee9eba862bec8bd7e8373568443bc9f9731a21cf9b0356f0653", "InterFaceGAN smile direction, W"),
    _pti("interfacegan-ffhq-rotation", "interfacegan_directions/rotation.pt", 2808,
         "9ef9787ac6b7b37940e47fef22e78cbbe5aeae2e566c0b391bf279f3264b1d1c",
         "InterFaceGAN head-rotation (yaw) direction, W"),
    _pti("ganspace-ffhq-pca", "ganspace_pca/ffhq_pca.pt", 167562,
         "4d7f9df1c96180d9026b9cb8d04753579fbf385f321a9d0e263641601c5e5d36",
         "GANSpace: 80 principal components of W with mean and std"),
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
    """Registry names that look like `name`: fuzzy matches first, then ones containing it; an alias
    comes after the name it stands for, so the suggestion says what it is."""
    key = name.strip().lower()
    index = _index()
    keys = sorted(index)
    near = difflib.get_close_matches(key, keys, n=limit, cutoff=0.6)
    near += [k for k in keys if key and key in k and k not in near]
    found: list[str] = []
    for k in near:
        for n in (index[k].name, k):
            if n not in found:
                found.append(n)
    return found[:limit]


def suggestion(name: str) -> str:
    """'; did you mean a, b?' for the closest names, or ''."""
    near = close_names(name)
    return f"; did you mean {', '.join(near)}?" if near else ""


def gan_config(name: str) -> Optional[str]:
    """The create_model config of the GAN registered as `name`, None when the registry does not know
    `name`; a ValueError (one line) for another kind of asset, or a GAN whose architecture only its
    file tells."""
    if not is_known(name):
        return None
    entry = lookup(name)
    if entry.kind != "gan":
        raise ValueError(f"{name}: a {entry.kind} asset, not a GAN")
    if entry.config is None:
        raise ValueError(f"{name}: its architecture is read from the file; "
                         f"stylegan.load({name!r}) builds it with the weights")
    return entry.config


def lookup(name: str) -> Entry:
    """The entry named `name` (or one of its aliases), case-insensitive; UnknownModelError otherwise."""
    entry = _index().get(name.strip().lower())
    if entry is not None:
        return entry
    raise UnknownModelError(f"{name}: not a known model{suggestion(name)} (`stylegan models` lists them)")
