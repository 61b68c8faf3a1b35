"""Equivariance of StyleGAN3 generators (Karras et al. 2021, appendix E): EQ-T, EQ-T_frac, EQ-R.

The generator renders the same w under an input transform M (`G.synthesis.input.transform`); the
reference applies the same transform to the untransformed image in pixel space (integer shift; Lanczos
fractional shift; band-limited rotation against a pseudo-rotated output); the PSNR of the masked
difference, summed in float64 over all samples, is the metric. Random draws per batch of B, from the
global generator, only for the enabled metrics and in this order: noise buffers, z = randn([B, z_dim]),
then rand(2) (EQ-T), rand(2) (EQ-T_frac), rand([]) (EQ-R), as NVIDIA's `equivariance.py` draws them."""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

import ops

from .features import MetricOptions, random_labels
from .ppl import redraw_noise
from .scores import psnr


def sinc(x: torch.Tensor) -> torch.Tensor:
    y = (x * math.pi).abs()
    z = torch.sin(y) / y.clamp(1e-30, float("inf"))
    return torch.where(y < 1e-30, torch.ones_like(x), z)


def lanczos_window(x: torch.Tensor, a: float) -> torch.Tensor:
    x = x.abs() / a
    return torch.where(x < 1, sinc(x), torch.zeros_like(x))


def rotation_matrix(angle) -> torch.Tensor:
    """[3, 3] rotating coordinates by `angle` radians (float32)."""
    angle = torch.as_tensor(angle).to(torch.float32)
    mat = torch.eye(3, device=angle.device)
    mat[0, 0] = angle.cos()
    mat[0, 1] = angle.sin()
    mat[1, 0] = -angle.sin()
    mat[1, 1] = angle.cos()
    return mat


def translation_matrix(t: torch.Tensor) -> torch.Tensor:
    """[3, 3] translating coordinates by t [2]."""
    mat = torch.eye(3, device=t.device)
    mat[:2, 2] = t
    return mat


def integer_translation(x: torch.Tensor, tx, ty) -> tuple[torch.Tensor, torch.Tensor]:
    """x shifted by (tx, ty) image widths rounded to whole pixels, zero-filled; and the mask of valid pixels."""
    _, _, H, W = x.shape
    ix = int(torch.as_tensor(tx * W).to(torch.float32).round())
    iy = int(torch.as_tensor(ty * H).to(torch.float32).round())
    z, m = torch.zeros_like(x), torch.zeros_like(x)
    if abs(ix) < W and abs(iy) < H:
        dst = (slice(None), slice(None), slice(max(iy, 0), H + min(iy, 0)), slice(max(ix, 0), W + min(ix, 0)))
        z[dst] = x[:, :, max(-iy, 0):H + min(-iy, 0), max(-ix, 0):W + min(-ix, 0)]
        m[dst] = 1
    return z, m


def fractional_translation(x: torch.Tensor, tx, ty, a: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """x shifted by (tx, ty) image widths with a separable Lanczos-a kernel; mask of the pixels whose
    whole kernel support lies inside the image."""
    _, _, H, W = x.shape
    tx = torch.as_tensor(tx * W).to(dtype=torch.float32, device=x.device)
    ty = torch.as_tensor(ty * H).to(dtype=torch.float32, device=x.device)
    ix, iy = int(tx.floor()), int(ty.floor())
    fx, fy = tx - ix, ty - iy
    b = a - 1
    z = torch.zeros_like(x)
    zx0, zy0 = max(ix - b, 0), max(iy - b, 0)
    zx1, zy1 = min(ix + a, 0) + W, min(iy + a, 0) + H
    if zx0 < zx1 and zy0 < zy1:
        taps = torch.arange(a * 2, device=x.device) - b
        filter_x = (sinc(taps - fx) * sinc((taps - fx) / a)).unsqueeze(0)
        filter_y = (sinc(taps - fy) * sinc((taps - fy) / a)).unsqueeze(1)
        y = ops.filter2d(x, filter_x / filter_x.sum(), padding=[b, a, 0, 0])
        y = ops.filter2d(y, filter_y / filter_y.sum(), padding=[0, 0, b, a])
        z[:, :, zy0:zy1, zx0:zx1] = y[:, :, max(b - iy, 0):H + b + a + min(-iy - a, 0),
                                      max(b - ix, 0):W + b + a + min(-ix - a, 0)]
    m = torch.zeros_like(x)
    mx0, my0 = max(ix + a, 0), max(iy + a, 0)
    mx1, my1 = min(ix - b, 0) + W, min(iy - b, 0) + H
    if mx0 < mx1 and my0 < my1:
        m[:, :, my0:my1, mx0:mx1] = 1
    return z, m


def affine_bandlimit_filter(mat: torch.Tensor, a: int = 3, amax: int = 16, aflt: int = 64, up: int = 4,
                            cutoff_in: float = 1, cutoff_out: float = 1) -> torch.Tensor:
    """The 2D low-pass filter [amax*2*up - 1]^2 that band-limits both the input and the output grid of
    the affine map `mat`: two oriented sincs, windowed by two oriented Lanczos windows, each pair
    convolved through the FFT, then normalised per polyphase component."""
    assert a <= amax < aflt
    mat = torch.as_tensor(mat).to(torch.float32)
    taps = ((torch.arange(aflt * up * 2 - 1, device=mat.device) + 1) / up - aflt).roll(1 - aflt * up)
    yi, xi = torch.meshgrid(taps, taps, indexing="ij")
    xo, yo = (torch.stack([xi, yi], dim=2) @ mat[:2, :2].t()).unbind(2)
    fi = sinc(xi * cutoff_in) * sinc(yi * cutoff_in)
    fo = sinc(xo * cutoff_out) * sinc(yo * cutoff_out)
    f = torch.fft.ifftn(torch.fft.fftn(fi) * torch.fft.fftn(fo)).real
    wi = lanczos_window(xi, a) * lanczos_window(yi, a)
    wo = lanczos_window(xo, a) * lanczos_window(yo, a)
    w = torch.fft.ifftn(torch.fft.fftn(wi) * torch.fft.fftn(wo)).real
    f = f * w
    c = (aflt - amax) * up
    f = f.roll([aflt * up - 1] * 2, dims=[0, 1])[c:-c, c:-c]
    f = F.pad(f, [0, 1, 0, 1]).reshape(amax * 2, up, amax * 2, up)
    f = f / f.sum([0, 2], keepdim=True) / (up ** 2)
    return f.reshape(amax * 2 * up, amax * 2 * up)[:-1, :-1]


def affine_transformation(x: torch.Tensor, mat: torch.Tensor, up: int = 4, **filter_kwargs):
    """x resampled under the affine map `mat`: band-limited upsampling by `up`, then bilinear sampling;
    and the mask of output pixels that saw only valid input."""
    _, _, H, W = x.shape
    mat = torch.as_tensor(mat).to(dtype=torch.float32, device=x.device)
    f = affine_bandlimit_filter(mat, up=up, **filter_kwargs)
    assert f.ndim == 2 and f.shape[0] == f.shape[1] and f.shape[0] % 2 == 1
    p = f.shape[0] // 2
    theta = mat.inverse()
    theta[:2, 2] *= 2
    theta[0, 2] += 1 / up / W
    theta[1, 2] += 1 / up / H
    theta[0, :] *= W / (W + p / up * 2)
    theta[1, :] *= H / (H + p / up * 2)
    theta = theta[:2, :3].unsqueeze(0).repeat([x.shape[0], 1, 1])
    g = F.affine_grid(theta, x.shape, align_corners=False)
    y = ops.upsample2d(x, f, up=up, padding=p)
    z = F.grid_sample(y, g, mode="bilinear", padding_mode="zeros", align_corners=False)
    m = torch.zeros_like(y)
    c = p * 2 + 1
    m[:, :, c:-c, c:-c] = 1
    m = F.grid_sample(m, g, mode="nearest", padding_mode="zeros", align_corners=False)
    return z, m


def fractional_rotation(x: torch.Tensor, angle, a: int = 3, **filter_kwargs):
    """x rotated by `angle` radians (band-limited), and its validity mask."""
    angle = torch.as_tensor(angle).to(dtype=torch.float32, device=x.device)
    return affine_transformation(x, rotation_matrix(angle), a=a, amax=a * 2, **filter_kwargs)


def fractional_pseudo_rotation(x: torch.Tensor, angle, a: int = 3, **filter_kwargs):
    """x filtered as if rotated by `angle` and back (the band limit a rotation imposes, without moving
    anything), and its validity mask."""
    angle = torch.as_tensor(angle).to(dtype=torch.float32, device=x.device)
    f = affine_bandlimit_filter(rotation_matrix(-angle), a=a, amax=a * 2, up=1, **filter_kwargs)
    y = ops.filter2d(x, f)
    m = torch.zeros_like(y)
    c = f.shape[0] // 2
    m[:, :, c:-c, c:-c] = 1
    return y, m


def equivariance_psnrs(opts: MetricOptions, num_samples: int, batch_size: int, translate_max: float = 0.125,
                       rotate_max: float = 1, eqt_int: bool = False, eqt_frac: bool = False,
                       eqr: bool = False) -> tuple[float, ...]:
    """PSNRs in dB of the enabled metrics, in the order EQ-T, EQ-T_frac, EQ-R."""
    assert eqt_int or eqt_frac or eqr
    from .. import distributed
    G = copy.deepcopy(opts.G).eval().requires_grad_(False)     # its input transform gets overwritten
    M = getattr(getattr(getattr(G, "synthesis", None), "input", None), "transform", None)
    if M is None:
        raise ValueError(f"{opts.stage}: needs a StyleGAN3 generator (its input transform); this one has none")
    eye = torch.eye(3, device=M.device)
    res = G.img_resolution
    sums, start = None, time.time()
    with torch.no_grad():
        for batch_start in range(0, num_samples, batch_size * opts.world_size):
            redraw_noise(G)
            z = torch.randn([batch_size, G.z_dim], device=opts.device)
            ws = G.mapping(z, random_labels(opts, batch_size))
            def render(transform: torch.Tensor) -> torch.Tensor:
                M.copy_(transform)
                return G.synthesis(ws, noise_mode="const", **opts.G_kwargs)

            orig = render(eye)
            terms = []
            for enabled, shift, whole in ((eqt_int, integer_translation, True),
                                          (eqt_frac, fractional_translation, False)):
                if enabled:
                    t = (torch.rand(2, device=opts.device) * 2 - 1) * translate_max
                    t = (t * res).round() / res if whole else t
                    img = render(translation_matrix(-t))
                    ref, mask = shift(orig, t[0], t[1])
                    terms += [(ref - img).square() * mask, mask]
            if eqr:
                angle = (torch.rand([], device=opts.device) * 2 - 1) * (rotate_max * np.pi)
                img = render(rotation_matrix(-angle))
                ref, ref_mask = fractional_rotation(orig, angle)
                pseudo, pseudo_mask = fractional_pseudo_rotation(img, angle)
                mask = ref_mask * pseudo_mask
                terms += [(ref - pseudo).square() * mask, mask]
            s = torch.stack([x.to(torch.float64).sum() for x in terms])
            sums = s if sums is None else sums + s
            opts.report("equivariance samples", min(batch_start + batch_size * opts.world_size, num_samples),
                        num_samples, start)
    sums = distributed.all_sum(sums, opts.world_size).cpu()
    return tuple(psnr(float(sums[i]), float(sums[i + 1])) for i in range(0, len(sums), 2))
