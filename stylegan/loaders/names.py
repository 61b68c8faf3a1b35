"""Names -> networks, above the two registries that know nothing of each other: the architectures and
configs of `stylegan.networks`, and the downloads of `stylegan.hub`.

`create_model` takes any of them."""
from __future__ import annotations

from typing import Any

import torch

from .. import hub, networks


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

