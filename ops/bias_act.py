"""Bias + activation + gain + clamp, fused into one op.

    y = clamp(act(x + b) * gain, -clamp, clamp)

`b` is broadcast along dimension `dim`. Defaults for `alpha` and `gain` come from the activation
(e.g. lrelu: alpha 0.2, gain sqrt(2), which keeps the signal's second moment unchanged)."""
from __future__ import annotations

import math

import torch

from . import _selfcheck, cuda_ops
from ._activations import ACTIVATIONS
from ._dispatch import choose_impl
from ._util import needs_grad


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None,
             impl: str = "auto", *, inplace: bool = False) -> torch.Tensor:
    """Public entry point; `impl` selects 'ref' | 'fast' | 'cuda' | 'auto'. `inplace=True` lets the
    fast path write into x when nothing needs gradients (the caller's own temporary: a large
    fresh buffer costs more in page faults than the arithmetic)."""
    impl = choose_impl(impl, x, "bias_act")
    if impl == "cuda":
        alpha, gain = _defaults(act, alpha, gain)
        return cuda_ops.bias_act(cuda_ops.kernels("bias_act", x).bias_act, x, b, dim, act, alpha, gain, clamp)
    if impl == "fast" and not needs_grad(x, b):
        return _bias_act_inplace(x, b, dim, act, alpha, gain, clamp, inplace)
    if impl == "fast" and act in _SLOPE_FROM_OUTPUT and _defaults(act, alpha, gain)[1] > 0:
        return _BiasActSavingOutput.apply(x, b, dim, act, alpha, gain, clamp)
    return _bias_act_ref(x, b, dim, act, alpha, gain, clamp)


def _defaults(act: str, alpha: float | None, gain: float | None) -> tuple[float, float]:
    """alpha and gain, taking the activation's defaults where None."""
    spec = ACTIVATIONS[act]
    return (float(spec.def_alpha if alpha is None else alpha), float(spec.def_gain if gain is None else gain))


# Every activation's in-place form: the reference's arithmetic (the same kernels, so the same bits),
# on one buffer. Swish keeps one temporary, its sigmoid.
_INPLACE = {"linear": lambda x, a: x, "relu": lambda x, a: x.relu_(),
            "lrelu": lambda x, a: torch.nn.functional.leaky_relu_(x, a),
            "tanh": lambda x, a: x.tanh_(), "sigmoid": lambda x, a: x.sigmoid_(),
            "elu": lambda x, a: torch.nn.functional.elu_(x), "selu": lambda x, a: torch.selu_(x),
            "softplus": lambda x, a: torch.ops.aten.softplus.out(x, 1, 20, out=x),
            "swish": lambda x, a: x.mul_(torch.sigmoid(x))}
assert set(_INPLACE) == set(ACTIVATIONS)
# Activations whose gradient the output alone gives (its sign is the slope): the saving-output path.
_SLOPE_FROM_OUTPUT = ("linear", "relu", "lrelu")


def _bias_act_inplace(x, b, dim, act, alpha, gain, clamp, overwrite_x=False):
    """The reference's steps without a new tensor per step (no autograd graph to keep); with
    `overwrite_x`, without any new tensor."""
    assert clamp is None or clamp >= 0
    alpha, gain = _defaults(act, alpha, gain)
    if b is not None:
        assert b.ndim == 1 and 0 <= dim < x.ndim and b.shape[0] == x.shape[dim]
        b = b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
        x = x.add_(b) if overwrite_x else x + b   # the one new buffer, unless x may be overwritten
    elif not overwrite_x:
        x = x.clone()
    x = _INPLACE[act](x, alpha)
    if gain != 1:
        x.mul_(gain)
    if clamp is not None:
        x.clamp_(-clamp, clamp)
    return x


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


class _BiasActSavingOutput(torch.autograd.Function):
    """The reference's numbers, keeping only the output for the backward: for (leaky) ReLU with a
    positive gain its sign gives the slope, and |y| = clamp marks where the clamp cut the gradient.
    The output is what the next layer keeps anyway; the reference keeps two more tensors of its
    size (the activation's and the clamp's inputs)."""

    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):
        y = _bias_act_inplace(x, b, dim, act, alpha, gain, clamp)
        ctx.save_for_backward(y)
        ctx.args = (dim, act, *_defaults(act, alpha, gain), clamp, b is not None)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        dim, act, alpha, gain, clamp, has_b = ctx.args
        gx = _grad_from_output(grad, y, act, alpha, gain, clamp)
        gb = gx.sum([i for i in range(gx.ndim) if i != dim]) if has_b and ctx.needs_input_grad[1] else None
        return gx, gb, None, None, None, None, None


def _grad_from_output(grad, y, act, alpha, gain, clamp):
    """d(loss)/d(pre-activation) from the output alone, multiplied in the reference's order (gain,
    then the slope). Plain backward: one new tensor, which aten's own backward kernels overwrite.
    Under create_graph (gradient penalties) those out= kernels are not differentiable: out of place."""
    gx = grad * gain
    cut = None if clamp is None else (y >= clamp).logical_or_(y <= -clamp)
    if torch.is_grad_enabled():   # backward under create_graph
        # aten's backward ops, as the reference's autograd uses them: their derivative with respect to
        # y is zero, but y stays in the graph, so a penalty on this gradient gives b (and whatever
        # made x) a zero gradient, not none, exactly as NVIDIA's reference does (Adam steps on it).
        if act == "relu":
            gx = torch.ops.aten.threshold_backward(gx, y, 0)
        elif act == "lrelu":
            gx = torch.ops.aten.leaky_relu_backward(gx, y, alpha, True)
        return gx if cut is None else gx.masked_fill(cut, 0)
    if act == "relu":
        torch.ops.aten.threshold_backward.grad_input(gx, y, 0, grad_input=gx)
    elif act == "lrelu":
        torch.ops.aten.leaky_relu_backward.grad_input(gx, y, alpha, True, grad_input=gx)
    return gx if cut is None else gx.masked_fill_(cut, 0)


@_selfcheck.register("bias_act")
def _self_check(K, device: torch.device) -> list:
    """The fused kernel against the reference: lrelu with a clamp (every layer of the networks) and
    linear (FC layers, ToRGB), forward, gradients to x and b, and second order in float32 (R1)."""
    b = _selfcheck.randn(6, seed=1)
    v = _selfcheck.away_from(_selfcheck.randn(2, 6, 5, 4, seed=2) * 1.5, [0.0, 1.5 / math.sqrt(2)], 0.05)
    x = v - b[:, None, None]  # pre-activations away from the kink and the clamp
    out = []
    for dtype in _selfcheck.DTYPES:
        for act, clamp in (("lrelu", 1.5), ("linear", None)):
            alpha, gain = _defaults(act, None, None)
            out += _selfcheck.against_reference(
                f"bias_act {act}", lambda x, b: cuda_ops.bias_act(K.bias_act, x, b, 1, act, alpha, gain, clamp),
                lambda x, b: _bias_act_ref(x, b, 1, act, None, None, clamp), [x, b], device, dtype,
                second_order=dtype == torch.float32)
    return out
