"""Modulated convolution (StyleGAN2): scale input channels by per-sample styles, convolve, demodulate.

    w'_{n,o,i,k} = w_{o,i,k} * s_{n,i}
    w''_{n,o,i,k} = w'_{n,o,i,k} / sqrt(sum_{i,k} w'^2_{n,o,i,k} + 1e-8)      (demodulate)

Two equivalent executions: `fused_modconv` builds per-sample weights and runs one grouped
convolution (batch as groups); otherwise the styles scale the activations before a shared
convolution and the demodulation coefficients scale its output. That is NVIDIA's arithmetic
(impl='ref', and the CUDA path).

impl='fast' (CPU) computes the same maths with less work:
  - the demodulation norm is sum_i s_{n,i}^2 * (sum_k w_{o,i,k}^2): one [N, I] x [I, O] product
    instead of squaring an [N, O, I, kh, kw] tensor;
  - each factor (styles on the input side, demodulation on the output side) goes where it costs
    least: into the weight (O*I*kh*kw multiplies) or into the activations (I*H*W, O*H'*W'); with
    a batch the weight stays shared, so one ordinary convolution serves every sample;
  - activations are kept channels-last: oneDNN's transposed convolution runs up to twice as fast so.
"""
from __future__ import annotations

import torch
from torch.utils.weak import WeakIdKeyDictionary

from torch_utils.misc import assert_shape
from ._dispatch import choose_impl
from ._util import needs_grad, scale_channels
from . import conv3x3
from .conv2d_resample import conv2d_resample


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, down: int = 1, padding=0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, flip_weight: bool = True, fused_modconv: bool = True,
                     impl: str = "auto") -> torch.Tensor:
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    assert_shape(weight, [out_ch, in_ch, kh, kw])
    assert_shape(x, [n, in_ch, None, None])
    assert_shape(styles, [n, in_ch])

    if choose_impl(impl, x) == "fast" and x.dtype != torch.float16:
        return _modulated_conv2d_fast(x, weight, styles, noise, up, down, padding, resample_filter, demodulate,
                                      flip_weight)

    # fp16 cannot hold the unnormalised products; rescale both factors (demodulation undoes it).
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / (in_ch * kh * kw) ** 0.5 / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w = dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, kh, kw]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight, impl=impl)
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=n,
                        flip_weight=flip_weight, impl=impl)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)   # float32 noise must not promote a reduced-precision x
    return x


# weight -> (its version, sum_k w^2 [O, I], the weight channels-last): what every call derives from
# a weight that only changes when an optimiser steps.
_derived = WeakIdKeyDictionary()


def _weight_terms(weight: torch.Tensor, up: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_k w^2 [O, I], w in the layout its convolution reads fastest), cached while the weight is
    unchanged and no gradient flows into it (a training or tuning step recomputes them in the graph).
    Upsampling runs a transposed convolution on w.transpose(0, 1): that view is made contiguous."""
    if needs_grad(weight):
        return weight.square().sum(dim=[2, 3]), weight
    # Inference tensors keep no version counter; they are only written inside inference_mode.
    version = None if weight.is_inference() else weight._version
    hit = _derived.get(weight)
    if hit is None or hit[0] != version or hit[1].device != weight.device:
        with torch.no_grad():
            laid = weight.transpose(0, 1).contiguous().transpose(0, 1) if up > 1 else \
                weight.contiguous(memory_format=torch.channels_last)
            hit = (version, weight.square().sum(dim=[2, 3]), laid)
        _derived[weight] = hit
    return hit[1], hit[2]


def _modulated_conv2d_fast(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight):
    n, in_ch, h, w = x.shape
    out_ch, _, kh, kw = weight.shape
    styles = styles.to(torch.promote_types(x.dtype, torch.float32))   # bf16 x: styles and dcoefs stay float32
    w2, laid = _weight_terms(weight, up)
    dcoefs = (styles.square() @ w2.t().to(styles.dtype) + 1e-8).rsqrt() if demodulate else None
    # Both factors and the noise ride on the Winograd kernel's transforms: no pass of their own.
    if conv3x3.applies(x, weight, up, down, padding):
        y = conv3x3.conv3x3(x, weight, styles, dcoefs, noise, flip_weight)
        if y is not None:
            return y
    weight = laid
    # A batch shares the weight (one convolution); a single sample folds a factor into the weight
    # when the weight is the smaller tensor to scale (high resolution, few channels).
    w_size = out_ch * in_ch * kh * kw
    # Folded into a weight that needs no gradient (projection), a factor would make the backward pay
    # a weight-gradient convolution; scaling the activations costs an elementwise pass instead.
    grad = needs_grad(styles) and not weight.requires_grad
    fold_in = n == 1 and w_size < in_ch * h * w and not grad
    fold_out = demodulate and n == 1 and w_size < out_ch * (h * up // down) * (w * up // down) and not grad
    if fold_in:
        weight = weight * styles.reshape(1, -1, 1, 1)
    else:
        x = scale_channels(x, styles.to(x.dtype))
    if fold_out:
        weight = weight * dcoefs.reshape(-1, 1, 1, 1)
    x = x.contiguous(memory_format=torch.channels_last)
    x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding,
                        flip_weight=flip_weight, impl="fast")
    # x is the convolution's fresh output: without gradients it takes the scale and noise in place.
    inplace = not needs_grad(x, noise)
    if demodulate and not fold_out:
        scale = dcoefs.to(x.dtype).reshape(n, -1, 1, 1)   # a float32 scale on bf16 x takes a slow mixed-dtype path
        if inplace:
            return x.mul_(scale) if noise is None else x.mul_(scale).add_(noise.to(x.dtype))
        x = scale_channels(x, scale.reshape(n, -1))
        return x if noise is None else x + noise.to(x.dtype)
    if noise is None:
        return x
    return x.add_(noise.to(x.dtype)) if inplace else x + noise.to(x.dtype)
