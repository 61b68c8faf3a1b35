"""Modulated convolution (StyleGAN2): scale input channels by per-sample styles, convolve, demodulate.

    w'_{n,o,i,k} = w_{o,i,k} * s_{n,i}
    w''_{n,o,i,k} = w'_{n,o,i,k} / sqrt(sum_{i,k} w'^2_{n,o,i,k} + 1e-8)      (demodulate)

Two equivalent executions: `fused_modconv` builds per-sample weights and runs one grouped
convolution (batch as groups); otherwise the styles scale the activations before a shared
convolution and the demodulation coefficients scale its output.
"""
from __future__ import annotations

import torch

from torch_utils.misc import assert_shape
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
        x = x + noise
    return x
