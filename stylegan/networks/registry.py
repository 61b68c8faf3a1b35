"""One registry of network architectures and named configs; `create_model` is the front door.

An *architecture* is a module class registered under a short name ('stylegan2', 'stylegan3',
'stylegan2_discriminator'). A *config* is a named set of constructor arguments for one
architecture (e.g. the official FFHQ 1024 networks). Every module built here remembers its
architecture name and constructor kwargs, which is all our save format needs to rebuild it.
Networks know nothing of files or downloads: names of the download registry (`stylegan.hub`) are
resolved above both, by `stylegan.create_model` (stylegan/loaders/names.py).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch

_ARCHS: dict[str, type[torch.nn.Module]] = {}
_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {}


class UnknownArchError(ValueError):
    """A name that is neither an architecture nor a config."""


def register_arch(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        assert name not in _ARCHS, f"architecture {name!r} registered twice"
        _ARCHS[name] = cls
        cls.arch = name
        return cls
    return wrap


def register_config(name: str, arch: str, **kwargs: Any) -> None:
    assert name not in _CONFIGS, f"config {name!r} registered twice"
    _CONFIGS[name] = (arch, kwargs)


def list_archs() -> list[str]:
    return sorted(_ARCHS)


def list_configs() -> list[str]:
    return sorted(_CONFIGS)


def is_architecture(name: str) -> bool:
    """Whether `name` is an architecture or a config: something create_model builds."""
    return name in _ARCHS or name in _CONFIGS


def create_model(name: str, **kwargs: Any) -> torch.nn.Module:
    """Build an untrained architecture (by arch name) or a named config, with kwargs overriding the config.

    The result carries `.arch` and `.init_kwargs` (a deep copy of the final kwargs)."""
    if name in _CONFIGS:
        arch, base = _CONFIGS[name]
        kwargs = {**copy.deepcopy(base), **kwargs}
    elif name in _ARCHS:
        arch = name
    else:
        known = ", ".join(list_archs() + list_configs())
        raise UnknownArchError(f"{name}: not an architecture or config (known: {known})")
    module = _ARCHS[arch](**copy.deepcopy(kwargs))
    module.init_kwargs = copy.deepcopy(kwargs)
    return module
