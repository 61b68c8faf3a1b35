"""What the ops tests share: random upfirdn2d argument sets, filtered_lrelu cases, and the numpy
truths of upfirdn2d and filtered_lrelu (scipy), for the reference path and the kernels alike; and
the inputs that the kernel tests on the CPU emulation and on a GPU (tests/gpu) both run."""
from __future__ import annotations

import random

import math

import numpy as np
import scipy.signal
import torch

import ops


def upfirdn2d_cases(n: int, seed: int):
    """Up to n cases: filter shape (1-D separable or 2-D), up/down factors, padding (negative = crop),
    input size, flip and gain; cases whose crop exceeds the padded signal are left out."""
    rng = random.Random(seed)
    for _ in range(n):
        sep = rng.random() < 0.5
        kw, kh = rng.randint(1, 7), rng.randint(1, 7)
        case = dict(f=(kw,) if sep else (kh, kw), up=(rng.randint(1, 4), rng.randint(1, 4)),
                    down=(rng.randint(1, 4), rng.randint(1, 4)), pad=[rng.randint(-2, 5) for _ in range(4)],
                    hw=(rng.choice([3, 5, 8, 130]), rng.choice([2, 7, 9, 131])), flip=rng.random() < 0.5,
                    gain=rng.choice([1.0, 2.5]))
        out_w = (case["hw"][1] * case["up"][0] + case["pad"][0] + case["pad"][1] - kw + case["down"][0]) // case["down"][0]
        out_h = (case["hw"][0] * case["up"][1] + case["pad"][2] + case["pad"][3] - (kw if sep else kh) + case["down"][1]) // case["down"][1]
        # Skip cases whose cropping eats more than the padded signal (undefined in the reference).
        if out_w >= 1 and out_h >= 1 and min(case["pad"]) > -min(case["hw"]):
            yield case


# The upfirdn2d cases of the kernel tests (emulated on the CPU, and on a GPU).
UPFIRDN2D_KERNEL_CASES = list(upfirdn2d_cases(60, seed=4321))


def nvidia_filtered_lrelu_kept_bytes(x_shape, fu_shape, fd_shape, up: int, down: int, padding) -> int:
    """Bytes NVIDIA's filtered_lrelu keeps for its backward on its fused-kernel path (stylegan3,
    torch_utils/ops/filtered_lrelu.py and .cpp) beyond tensors resident anyway: the sign tensor, uint8
    [N, C, (yh - 1) * down + fdh, w / 4] with w = (yw - 1) * down + fdw rounded up to 16, plus a fresh
    [1, 1] float32 ones filter for each filter given as None. `fu_shape`/`fd_shape`: None, [k] or [h, w]."""
    n, c, h, w = x_shape
    (fuh, fuw), (fdh, fdw) = [(1, 1) if s is None else (s[0], s[-1]) for s in (fu_shape, fd_shape)]
    px0, px1, py0, py1 = padding
    yw = (w * up + px0 + px1 - (fuw - 1) - (fdw - 1) + (down - 1)) // down
    yh = (h * up + py0 + py1 - (fuh - 1) - (fdh - 1) + (down - 1)) // down
    sign_w = ((yw - 1) * down + fdw + 15) // 16 * 16
    ones = 4 * ((fu_shape is None) + (fd_shape is None))
    return n * c * ((yh - 1) * down + fdh) * (sign_w // 4) + ones


def _np_upfirdn_axis(a, f, up, down, p0, p1, axis):
    """One axis by zero-stuff, pad/crop, full convolution, decimate (numpy only)."""
    a = np.moveaxis(a, axis, -1)
    z = np.zeros(a.shape[:-1] + (a.shape[-1] * up,))
    z[..., ::up] = a
    z = np.pad(z, [(0, 0)] * (z.ndim - 1) + [(max(p0, 0), max(p1, 0))])
    z = z[..., max(-p0, 0): z.shape[-1] - max(-p1, 0)]
    y = np.apply_along_axis(lambda v: np.convolve(v, f, mode="valid"), -1, z)
    return np.moveaxis(y[..., ::down], -1, axis)


def np_upfirdn2d(x, f, up, down, pad, flip, gain):
    """Independent truth: scipy.signal.upfirdn per axis (separable) or zero-stuff + convolve2d (2-D)."""
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = up, down, pad
    f = f * gain ** (f.ndim / 2)
    if flip:
        f = f[::-1] if f.ndim == 1 else f[::-1, ::-1]
    if f.ndim == 1:
        if min(pad) >= 0:
            # scipy's upfirdn computes the full convolution; the padding picks a window of it.
            def axis(a, up_, down_, p0, p1, ax):
                a = np.moveaxis(a, ax, -1)
                a = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, (p1 + up_ - 1) // up_ + 1)])
                full = scipy.signal.upfirdn(f, a, up=up_, down=1, axis=-1)
                full = np.pad(full, [(0, 0)] * (a.ndim - 1) + [(p0, 0)])
                n = (a.shape[-1] - ((p1 + up_ - 1) // up_ + 1)) * up_ + p0 + p1 - len(f) + 1
                return np.moveaxis(full[..., len(f) - 1: len(f) - 1 + n][..., ::down_], -1, ax)
            return axis(axis(x, upx, downx, px0, px1, -1), upy, downy, py0, py1, -2)
        y = _np_upfirdn_axis(x, f, upx, downx, px0, px1, -1)
        return _np_upfirdn_axis(y, f, upy, downy, py0, py1, -2)
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * upy, w * upx))
    z[:, :, ::upy, ::upx] = x
    z = np.pad(z, [(0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))])
    z = z[:, :, max(-py0, 0): z.shape[2] - max(-py1, 0), max(-px0, 0): z.shape[3] - max(-px1, 0)]
    y = np.stack([np.stack([scipy.signal.convolve2d(z[i, j], f, mode="valid") for j in range(c)]) for i in range(n)])
    return y[:, :, ::downy, ::downx]


def flrelu_np(x, fu, fd, b, up, down, pad, gain, slope, clamp):
    y = x + b[None, :, None, None]
    y = np_upfirdn2d(y, fu, (up, up), (1, 1), pad, False, up ** 2)
    y = np.where(y >= 0, y, y * slope) * gain
    if clamp is not None:
        y = np.clip(y, -clamp, clamp)
    return np_upfirdn2d(y, fd, (1, 1), (down, down), (0, 0, 0, 0), False, 1)


def random_filter(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) + 0.1


def _flr_cases():
    """The layer shapes StyleGAN3 uses, plus random ones."""
    f12 = lambda s: random_filter((12,), s) / random_filter((12,), s).sum()
    radial = torch.from_numpy(np.outer(np.hanning(9), np.hanning(9))).float() + 0.01
    cases = [
        dict(fu=f12(1), fd=f12(2), up=2, down=2, pad=10, clamp=None, hw=(20, 20)),          # T, upsampling layer
        dict(fu=f12(3), fd=radial / radial.sum(), up=2, down=2, pad=(8, 9, 8, 9), clamp=256, hw=(17, 19)),  # R
        dict(fu=f12(4), fd=f12(5), up=2, down=1, pad=(11, 10, 11, 10), clamp=0.5, hw=(12, 16)),  # critically sampled
        dict(fu=random_filter((6,), 8), fd=random_filter((4,), 9), up=4, down=2, pad=(3, 1, 2, 0), clamp=None, hw=(9, 7)),
        dict(fu=None, fd=None, up=1, down=1, pad=0, clamp=None, hw=(5, 6)),
        dict(fu=random_filter((3, 5), 10), fd=random_filter((2, 3), 11), up=3, down=3, pad=(-1, 4, 2, -2), clamp=1.0, hw=(11, 13)),
    ]
    rng = random.Random(12)
    for i in range(10):
        up, down = rng.randint(1, 4), rng.randint(1, 4)
        fu = random_filter((rng.randint(1, 8),) if rng.random() < 0.5 else (rng.randint(1, 6), rng.randint(1, 6)), 20 + i)
        fd = random_filter((rng.randint(1, 8),) if rng.random() < 0.5 else (rng.randint(1, 6), rng.randint(1, 6)), 40 + i)
        pad = [rng.randint(0, 6) for _ in range(4)]
        cases.append(dict(fu=fu, fd=fd, up=up, down=down, pad=pad, clamp=rng.choice([None, 0.5]),
                          hw=(rng.randint(4, 40), rng.randint(4, 40))))
    return cases


FLR_CASES = _flr_cases()


# --- the kernel tests' inputs: whole StyleGAN3 layers and the three ops as a network calls them

def sg3_layers(name):
    """(layer name, x shape at batch 1, filtered_lrelu kwargs) of each layer of a fixture StyleGAN3."""
    from conftest import fixture_model
    G = fixture_model(name)["G_ema"]
    for lname, layer in G.synthesis.named_children():
        if hasattr(layer, "up_factor"):
            side = int(layer.in_size[0]) + layer.conv_kernel - 1  # the 'full' convolution's output
            yield lname, (1, layer.out_channels, side, side), dict(
                fu=layer.up_filter, fd=layer.down_filter, up=layer.up_factor, down=layer.down_factor,
                padding=layer.padding, gain=1 if layer.is_torgb else math.sqrt(2), slope=1 if layer.is_torgb else 0.2,
                clamp=layer.conv_clamp)


def sg3_f64(name):
    """A fixture StyleGAN3's first layer in float64 (12-tap up filter; down: 12 taps separable for T,
    12 x 12 radial for R), two channels."""
    _, shape, kw = next(sg3_layers(name))
    g = torch.Generator().manual_seed(5)
    x = torch.randn((1, 2, *shape[2:]), generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    return x, b, kw


def each_op(x, impl):
    """The three ops on x [N, C, H, W], with the filters and biases a network would give them."""
    f = ops.setup_filter([1, 3, 3, 1], device=x.device)
    f12 = random_filter((12,), 3).to(x.device)
    b = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(2)).to(x.device).requires_grad_(True)
    return [ops.bias_act(x, b, act="lrelu", clamp=256, impl=impl),
            ops.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4, impl=impl),
            ops.filtered_lrelu(x, f12 / f12.sum(), f12 / f12.sum(), b, up=2, down=2, padding=10, clamp=256, impl=impl)]


def unpack_signs(signs: torch.Tensor) -> torch.Tensor:
    """uint8 [..., bytes] -> codes [..., 4 * bytes], sample 4k + j in bits 2j, 2j + 1 of byte k."""
    shifts = torch.tensor([0, 2, 4, 6], dtype=torch.uint8)
    return ((signs[..., None] >> shifts) & 3).flatten(-2)
