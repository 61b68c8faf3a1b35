"""Registry of NVIDIA's public pretrained StyleGAN2 / StyleGAN2-ADA / StyleGAN3 network pickles.

File names and URLs follow the READMEs of NVlabs/stylegan2, NVlabs/stylegan2-ada-pytorch and
NVlabs/stylegan3. `size` and `sha256` stay None unless confirmed from a trustworthy source: a wrong
checksum would make every download fail, a missing one only skips a check.

Licences: every network here is for non-commercial use only. The training data have their own
terms on top (e.g. FFHQ is CC BY-NC-SA 4.0); check the dataset's page before publishing results.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Optional

FORMATS = ("nvidia-pickle", "tf-pickle")

# NVIDIA's naming: the TF StyleGAN2 release says "License-NC"; the PyTorch releases use a
# non-commercial "Nvidia Source Code License".
LICENCE_TF = "NVIDIA Source Code License-NC"
LICENCE_PT = "NVIDIA Source Code License (non-commercial)"
LICENCE_URL_TF = "https://nvlabs.github.io/stylegan2/license.html"
LICENCE_URL_ADA = "https://nvlabs.github.io/stylegan2-ada-pytorch/license.html"
LICENCE_URL_SG3 = "https://github.com/NVlabs/stylegan3/blob/main/LICENSE.txt"

ADA_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
NGC_SG2_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
NGC_SG3_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
TF_SG2_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    url: str
    resolution: int
    format: str
    licence: str
    licence_url: str
    family: str                      # 'stylegan2', 'stylegan2-ada', 'stylegan3-t', 'stylegan3-r'
    dataset: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    size: Optional[int] = None       # bytes, only where confirmed
    sha256: Optional[str] = None     # lowercase hex, only where confirmed

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def _ada(dataset: str, res: int, description: str) -> ModelEntry:
    return ModelEntry(f"stylegan2-ada-{dataset}", f"{ADA_BASE}{dataset}.pkl", res, "nvidia-pickle",
                      LICENCE_PT, LICENCE_URL_ADA, "stylegan2-ada", dataset, description, aliases=(dataset,))


def _ngc(family: str, dataset: str, res: int, description: str = "") -> ModelEntry:
    base = NGC_SG3_BASE if family.startswith("stylegan3") else NGC_SG2_BASE
    return ModelEntry(f"{family}-{dataset}-{res}", f"{base}{family}-{dataset}-{res}x{res}.pkl", res,
                      "nvidia-pickle", LICENCE_PT, LICENCE_URL_SG3, family, dataset, description)


def _tf(dataset: str, res: int, description: str) -> ModelEntry:
    return ModelEntry(f"stylegan2-{dataset}-config-f", f"{TF_SG2_BASE}stylegan2-{dataset}-config-f.pkl", res,
                      "tf-pickle", LICENCE_TF, LICENCE_URL_TF, "stylegan2", dataset, description)


MODELS: tuple[ModelEntry, ...] = (
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
)


class UnknownModelError(ValueError):
    """Name not in the registry; ValueError so CLI code that reports ValueError shows it as is."""


def _index() -> dict[str, ModelEntry]:
    # Rebuilt per call (a few dozen entries) so tests can swap MODELS with monkeypatch.
    index: dict[str, ModelEntry] = {}
    for entry in MODELS:
        for key in (entry.name, *entry.aliases):
            index[key.lower()] = entry
    return index


def names(include_aliases: bool = False) -> list[str]:
    if include_aliases:
        return sorted(_index())
    return [e.name for e in MODELS]


def is_model_name(name: str) -> bool:
    return name.strip().lower() in _index()


def close_names(name: str, limit: int = 5) -> list[str]:
    """Registry names that look like `name`: fuzzy matches first, then ones containing it."""
    key = name.strip().lower()
    keys = sorted(_index())
    found = difflib.get_close_matches(key, keys, n=limit, cutoff=0.6)
    found += [k for k in keys if key and key in k and k not in found]
    return found[:limit]


def get_model(name: str) -> ModelEntry:
    entry = _index().get(name.strip().lower())
    if entry is not None:
        return entry
    near = close_names(name)
    hint = f"; did you mean: {', '.join(near)}?" if near else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (`stylegan models` lists them all)")
