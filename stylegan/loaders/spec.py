"""What every format reader produces: enough to build one of our networks and fill it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Union

import torch

Tensors = Union[Mapping[str, torch.Tensor], Callable[[torch.nn.Module], Mapping[str, torch.Tensor]]]


@dataclass
class NetSpec:
    arch: str                      # a registered architecture name
    kwargs: dict                   # its constructor arguments
    tensors: Tensors               # the full state dict, or a function of the freshly built module
    post: Callable[[torch.nn.Module], None] | None = None   # fix-ups after loading (e.g. estimate w_avg)
