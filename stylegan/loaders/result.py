"""What `load` returns: the networks a file holds, apart from the file's other data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional

import torch

from .errors import LoadError

NETWORK_KEYS = ("G", "D", "G_ema")


@dataclass(eq=False)
class LoadedModel:
    """Networks (`G`, `D`, `G_ema`, each None when absent), the file's `format`, its JSON-able
    `metadata` (e.g. `training_set_kwargs`, `augment_pipe_kwargs`) and the `source` it came from.

    Indexing reaches the networks only, so NVIDIA-style code keeps working: `nets["G_ema"]`,
    `"D" in nets`, `nets.keys()`; metadata is read as `nets.metadata[...]`."""
    G: Optional[torch.nn.Module] = None
    D: Optional[torch.nn.Module] = None
    G_ema: Optional[torch.nn.Module] = None
    format: str = ""
    metadata: dict = field(default_factory=dict)
    source: str = ""

    @property
    def generator(self) -> torch.nn.Module:
        """The generator to sample from: G_ema (the averaged weights), else G."""
        G = self.G_ema if self.G_ema is not None else self.G
        if G is None:
            raise LoadError(self.source or "the model", f"holds no generator (only {', '.join(self.keys()) or 'no network'})")
        return G

    def keys(self) -> list[str]:
        return [k for k in NETWORK_KEYS if getattr(self, k) is not None]

    def items(self) -> list[tuple[str, torch.nn.Module]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def networks(self) -> dict[str, torch.nn.Module]:
        return dict(self.items())

    def __getitem__(self, key: str) -> torch.nn.Module:
        if key in NETWORK_KEYS and getattr(self, key) is not None:
            return getattr(self, key)
        if key in NETWORK_KEYS:
            raise KeyError(f"{key!r}: this model holds no {key} (it holds {', '.join(self.keys())})")
        raise KeyError(f"{key!r}: indexing gives networks only ({', '.join(NETWORK_KEYS)}); "
                       "other data is in .metadata, the format in .format")

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __repr__(self) -> str:
        nets = ", ".join(f"{k}={type(v).__module__.rsplit('.', 1)[-1]}.{type(v).__name__}" for k, v in self.items())
        return f"LoadedModel({nets}, format={self.format!r}, source={self.source!r})"
