"""Bias + activation + gain + clamp, fused into one op.

    y = clamp(act(x + b) * gain, -clamp, clamp)

`b` is broadcast along dimension `dim`. Defaults for `alpha` and `gain` come from the activation
(e.g. lrelu: alpha 0.2, gain sqrt(2), which keeps the signal's second moment unchanged)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ._util import choose_impl


@dataclass(frozen=True)
class Activation:
    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2)),
}


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None,
             impl: str = "auto") -> torch.Tensor:
    """Public entry point; `impl` selects 'ref' | 'fast' | 'cuda' | 'auto'."""
    impl = choose_impl(impl, x, "bias_act")
    if impl == "cuda":
        from . import cuda_ops
        alpha, gain = _defaults(act, alpha, gain)
        return cuda_ops.bias_act(cuda_ops.kernels("bias_act", x).bias_act, x, b, dim, act, alpha, gain, clamp)
    # The reference is already a handful of elementwise kernels; nothing cheaper exists on CPU.
    return _bias_act_ref(x, b, dim, act, alpha, gain, clamp)


def _defaults(act: str, alpha: float | None, gain: float | None) -> tuple[float, float]:
    """alpha and gain, taking the activation's defaults where None."""
    spec = ACTIVATIONS[act]
    return (float(spec.def_alpha if alpha is None else alpha), float(spec.def_gain if gain is None else gain))


def _bias_act_ref(x, b, dim, act, alpha, gain, clamp):
    assert isinstance(x, torch.Tensor)
    assert clamp is None or clamp >= 0
    spec = ACTIVATIONS[act]
    alpha, gain = _defaults(act, alpha, gain)
    if b is not None:
        assert b.ndim == 1 and 0 <= dim < x.ndim and b.shape[0] == x.shape[dim]
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x
