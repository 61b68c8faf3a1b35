"""3x3 convolution (stride 1, padding 1) by Winograd's F(2x2, 3x3), in the compiled CPU kernel.

    y = conv2d(x * s_in, w, padding=1) * s_out + noise     s_in [N, C], s_out [N, K], noise [N | 1, 1, H, W]

F(2x2, 3x3) multiplies 16 times per 2x2 output tile and channel pair where a direct convolution
multiplies 36 times; its transforms use only 0, +-1 and 1/2, so it rounds no worse than a direct
float32 convolution (tests/test_conv3x3.py measures both against float64). The weight transform
U = G w G^T is computed in float64 once per weight and cached while the weight is unchanged.

The reference is F.conv2d. The kernel serves float32 CPU tensors whose weight needs no gradient:
inference, and projection, where the gradient to x is the same convolution with the transposed,
flipped weight. It beats oneDNN's direct convolution at every StyleGAN2 layer shape, 4x4 to 1024x1024
(benchmarks/ops_cpu.py prints both side by side).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.utils.weak import WeakIdKeyDictionary

from . import _cpu
from ._util import needs_grad, scale_channels

# G of F(2x2, 3x3): U = G w G^T on a 4x4 grid of points.
_G = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float64)


def applies(x: torch.Tensor, weight: torch.Tensor, up: int = 1, down: int = 1, padding=1, groups: int = 1) -> bool:
    """Whether conv3x3() can run this convolution (a cheap test; the kernel may still fail to build)."""
    out_ch, in_ch, kh, kw = weight.shape
    return (x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32 and (kh, kw) == (3, 3)
            and up == down == groups == 1 and padding in (1, [1, 1], (1, 1), [1, 1, 1, 1], (1, 1, 1, 1))
            and in_ch % 8 == 0 and out_ch % 8 == 0
            and not needs_grad(weight) and _cpu.enabled())


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """U = G w G^T [16, C, K] (float64 maths, float32 result) for correlation with w [K, C, 3, 3]."""
    k, c = weight.shape[:2]
    u = torch.einsum("ai,kcij,bj->abck", _G, weight.detach().double(), _G)
    return u.reshape(16, c, k).float()


# weight -> (its version, flip, U packed for the kernel, U of the transposed convolution or None)
_transformed = WeakIdKeyDictionary()


def _packed(kernel, weight: torch.Tensor, flip_weight: bool, backward: bool) -> torch.Tensor:
    version = None if weight.is_inference() else weight._version
    hit = _transformed.get(weight)
    if hit is None or tuple(hit[:2]) != (version, flip_weight):
        hit = [version, flip_weight, None, None]
        _transformed[weight] = hit
    slot = 3 if backward else 2
    if hit[slot] is None:
        w = weight if flip_weight else weight.flip([2, 3])   # correlation weights
        if backward:  # d/dx of a correlation: correlate with the transposed, flipped weight
            w = w.transpose(0, 1).flip([2, 3])
        hit[slot] = kernel.pack(transform_weight(w))
    return hit[slot]


def _noise_plane(noise: torch.Tensor | None, n: int, h: int, w: int) -> torch.Tensor | None:
    """noise as [N | 1, 1, H, W] float32 when it is the same for every channel, else None."""
    if noise is None or noise.shape[-2:] != (h, w) or (noise.dim() >= 3 and noise.shape[-3] != 1):
        return None
    if noise.numel() not in (h * w, n * h * w) or (noise.dim() == 4 and noise.shape[0] not in (1, n)):
        return None
    return noise.to(torch.float32).contiguous().reshape(-1, 1, h, w)


def conv3x3(x: torch.Tensor, weight: torch.Tensor, in_scale: torch.Tensor | None = None,
            out_scale: torch.Tensor | None = None, noise: torch.Tensor | None = None,
            flip_weight: bool = True) -> torch.Tensor | None:
    """conv2d(x * in_scale, weight, padding=1) * out_scale + noise, channels-last; None when the kernel
    cannot be had (the caller runs its own path). Requires applies(x, weight)."""
    n, c, h, w = x.shape
    k = weight.shape[0]
    kernel = _cpu.load("conv3x3")
    if kernel is None or c % kernel.vector_width or k % kernel.vector_width:
        return None
    if needs_grad(x, in_scale, out_scale, noise):
        # Autograd takes the scales and the noise; the kernel computes the convolution both ways.
        if in_scale is not None:
            x = scale_channels(x, in_scale)
        y = _Conv3x3.apply(x, _packed(kernel, weight, flip_weight, False), _packed(kernel, weight, flip_weight, True))
        if out_scale is not None:
            y = scale_channels(y, out_scale)
        return y if noise is None else y + noise
    plane = _noise_plane(noise, n, h, w)
    y = _run(kernel, x, _packed(kernel, weight, flip_weight, False), in_scale, out_scale, plane)
    return y if noise is None or plane is not None else y.add_(noise)


def _run(kernel, x, u, in_scale=None, out_scale=None, noise=None):
    empty = x.new_empty(0)
    as_arg = lambda t: empty if t is None else t.to(torch.float32).contiguous()  # noqa: E731
    return kernel.conv3x3(x.contiguous(memory_format=torch.channels_last), u, as_arg(in_scale),
                          as_arg(out_scale), as_arg(noise), 0)


class _Conv3x3(torch.autograd.Function):
    """y = correlate(x, w) with the weight held fixed: the backward is the same kernel on U^T."""

    @staticmethod
    def forward(ctx, x, u, u_back):
        ctx.u_back = u_back
        return _run(_cpu.load("conv3x3"), x, u)

    @staticmethod
    @once_differentiable   # a second derivative would need the backward's own graph
    def backward(ctx, grad):
        return _run(_cpu.load("conv3x3"), grad, ctx.u_back), None, None


def reference(x, weight, in_scale=None, out_scale=None, noise=None, flip_weight=True):
    """What conv3x3() computes, with F.conv2d."""
    n, c = x.shape[:2]
    if in_scale is not None:
        x = x * in_scale.reshape(n, c, 1, 1)
    y = F.conv2d(x, weight if flip_weight else weight.flip([2, 3]), padding=1)
    if out_scale is not None:
        y = y * out_scale.reshape(n, -1, 1, 1)
    return y if noise is None else y + noise
