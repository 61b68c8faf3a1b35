"""Names -> networks, above the two registries that know nothing of each other: the architectures and
configs of `stylegan.networks`, and the downloads of `stylegan.hub`.

`create_model` takes any of them. An architecture or config name where a model file is expected stands
for random weights only when asked (`load(..., untrained=True)`, which the command line does): a way to
try the tools offline, whose faces are noise."""
from __future__ import annotations

from typing import Any

import torch

from .. import hub, networks
from .result import LoadedModel

# Random weights drawn with this seed, so one name means one network across commands and runs.
UNTRAINED_SEED = 0


def create_model(name: str, **kwargs: Any) -> torch.nn.Module:
    """Build an untrained architecture (by arch name), a named config, or the architecture of a
    downloadable GAN (a `stylegan models` name whose config is certain), with kwargs overriding the config.

    The result carries `.arch` and `.init_kwargs` (a deep copy of the final kwargs)."""
    if not networks.is_architecture(name):
        config = hub.gan_config(name)
        if config is None:
            known = ", ".join(networks.list_archs() + networks.list_configs())
            raise networks.UnknownArchError(f"{name}: not an architecture, config or GAN of `stylegan models` "
                                            f"(known: {known})")
        name = config
    return networks.create_model(name, **kwargs)


def untrained(name: str, device: torch.device | str = "cpu", trainable: bool = False) -> LoadedModel:
    """The architecture or config `name` with random weights, the same ones every time (seed
    UNTRAINED_SEED, whatever the global RNG's state): a generator as G_ema, a discriminator as D."""
    if name not in networks.list_configs():
        configs = ", ".join(c for c in networks.list_configs() if c.startswith(name))
        raise ValueError(f"an architecture without settings: name one of its configs ({configs})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(UNTRAINED_SEED)
        net = networks.create_model(name)
    net = net.train(trainable).requires_grad_(trainable).to(device)
    key = "G_ema" if net.describe().kind == "generator" else "D"
    return LoadedModel(**{key: net}, format="untrained", source=name)
