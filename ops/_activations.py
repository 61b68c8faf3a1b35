"""The activations bias_act knows: function, default alpha and gain, and the fused kernel's id.

`cuda_id` must equal the value of the SgAct enum in ops/cuda/bias_act.h (a test parses the header)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float
    cuda_id: int


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0, 0),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2), 1),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2), 2),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0, 3),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0, 4),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0, 5),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0, 6),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0, 7),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2), 8),
}
