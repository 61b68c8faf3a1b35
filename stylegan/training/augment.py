"""Adaptive discriminator augmentation ("Training Generative Adversarial Networks with Limited Data",
Karras et al. 2020): every image D sees, real or fake, passes through the same random transformations,
each applied with probability `multiplier * p`. D can then not tell the augmentations themselves from
the data, so they do not leak into G, as long as p stays below about 0.8; ADA steers p by the sign of
D's outputs on reals (the loop does that, `adjust_p`).

The pipeline is NVIDIA's (`training/augment.py`), stage by stage and draw by draw:

  1. pixel blitting: x-flip, 90-degree rotations, integer translation;
  2. general geometry: isotropic scale, rotation (before and after an anisotropic scale, each with
     p_rot = 1 - sqrt(1 - p) so that "pre or post" has probability p), fractional translation; all
     of 1 and 2 compose into one inverse homogeneous matrix G_inv (output pixel -> input pixel), run
     once: reflect-pad, 2x upsample with the sym6 wavelet, bilinear sampling, 2x downsample;
  3. colour: brightness, contrast, luma flip, hue rotation, saturation, composed into one 4x4 matrix;
  4. image-space filtering (4 frequency bands), additive RGB noise and cutout.

Each enabled transformation always draws its tensors, whether p lets it act or not: the random
stream, and so a run, does not depend on p. Draws come from a `RandomSource` (training/rng.py), in
NVIDIA's order, so a recorded run replays exactly. Transform matrices are float32, as NVIDIA's are.
"""
from __future__ import annotations

import numpy as np
import scipy.signal
import torch
import torch.nn.functional as F

import ops

from .rng import GlobalRandom, RandomSource

# Low-pass halves of the Daubechies symlet wavelets used here (sym2: the filter bank; sym6: resampling).
SYM2 = [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025]
SYM6 = [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148]

# --augpipe presets of stylegan2-ada-pytorch (b: blit, g: geometry, c: colour, f: filter, n: noise, c: cutout).
_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
AUGPIPES = {
    "blit": _BLIT, "geom": _GEOM, "color": _COLOR, "filter": dict(imgfilter=1), "noise": dict(noise=1),
    "cutout": dict(cutout=1), "bg": {**_BLIT, **_GEOM}, "bgc": {**_BLIT, **_GEOM, **_COLOR},
    "bgcf": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1},
    "bgcfn": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1},
    "bgcfnc": {**_BLIT, **_GEOM, **_COLOR, "imgfilter": 1, "noise": 1, "cutout": 1},
}


# ----------------------------------------------------------------------------------------------
# Homogeneous matrices: [..., R, R] from rows of scalars or batched tensors (float32).

def matrix(*rows, device=None) -> torch.Tensor:
    """Rows of python numbers and/or tensors of one shape S -> [*S, R, C] float32."""
    cells = [v for row in rows for v in row]
    batch = next((v for v in cells if isinstance(v, torch.Tensor)), None)
    if batch is None:
        return torch.as_tensor(np.asarray(rows), dtype=torch.float32, device=device)
    cells = [v if isinstance(v, torch.Tensor) else torch.full(batch.shape, float(v), device=batch.device)
             for v in cells]
    return torch.stack(cells, dim=-1).reshape(*batch.shape, len(rows), -1)


def translate2d(tx, ty, **kw):
    return matrix([1, 0, tx], [0, 1, ty], [0, 0, 1], **kw)


def scale2d(sx, sy, **kw):
    return matrix([sx, 0, 0], [0, sy, 0], [0, 0, 1], **kw)


def rotate2d(theta, **kw):
    return matrix([torch.cos(theta), torch.sin(-theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1], **kw)


def translate3d(tx, ty, tz, **kw):
    return matrix([1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1], **kw)


def scale3d(sx, sy, sz, **kw):
    return matrix([sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1], **kw)


def rotate3d(v, theta, **kw):
    """Rotation by theta about the unit axis v (Rodrigues)."""
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return matrix([vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
                  [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
                  [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
                  [0, 0, 0, 1], **kw)


def _filter_bank() -> np.ndarray:
    """4 band-pass filters [4, taps] splitting the spectrum into octaves, from the sym2 wavelet."""
    lo = np.asarray(SYM2)
    hi = lo * (-1.0) ** np.arange(lo.size)            # H(-z)
    lo2 = np.convolve(lo, lo[::-1]) / 2               # H(z) H(1/z) / 2
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.eye(4, 1)                               # band 0: the identity, refined below
    for band in range(1, bank.shape[0]):
        # Dilate the bank by 2 (one octave down), low-pass it, and put the high band in row `band`.
        bank = np.dstack([bank, np.zeros_like(bank)]).reshape(bank.shape[0], -1)[:, :-1]
        bank = scipy.signal.convolve(bank, [lo2])
        lo_edge = (bank.shape[1] - hi2.size) // 2
        bank[band, lo_edge:lo_edge + hi2.size] += hi2
    return bank


class AugmentPipe(torch.nn.Module):
    """NVIDIA's augmentation pipeline with its parameter names; each transformation is enabled by a
    probability multiplier (1 = on). `p` (a buffer, so snapshots keep it) scales all of them."""

    def __init__(self, xflip=0, rotate90=0, xint=0, xint_max=0.125,
                 scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
                 brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0, brightness_std=0.2, contrast_std=0.5,
                 hue_max=1, saturation_std=1,
                 imgfilter=0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1,
                 noise=0, cutout=0, noise_std=0.1, cutout_size=0.5):
        super().__init__()
        self.register_buffer("p", torch.ones([]))
        self.init_kwargs = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.init_kwargs["imgfilter_bands"] = list(imgfilter_bands)
        for name, value in self.init_kwargs.items():
            setattr(self, name, list(map(float, value)) if name == "imgfilter_bands" else float(value))
        self.register_buffer("Hz_geom", ops.setup_filter(SYM6))
        self.register_buffer("Hz_fbank", torch.as_tensor(_filter_bank(), dtype=torch.float32))

    # ------------------------------------------------------------------------------------------

    def forward(self, images: torch.Tensor, rng: RandomSource | None = None) -> torch.Tensor:
        """images [N, C, H, W] float32 in [-1, 1] (C = 1 or 3) -> augmented images of the same shape."""
        assert isinstance(images, torch.Tensor) and images.ndim == 4
        rng = rng if rng is not None else GlobalRandom(images.device)
        n, c, h, w = images.shape
        g_inv = self._geometry(rng, n, w, h, images.device)
        if g_inv is not None:
            images = self._warp(images, g_inv)
        color = self._color(rng, n, c, images.device)
        if color is not None:
            images = _apply_color(images, color)
        if self.imgfilter > 0:
            images = self._filter(rng, images)
        if self.noise > 0:
            sigma = rng.randn([n, 1, 1, 1]).abs() * self.noise_std
            sigma = self._gate(rng, [n, 1, 1, 1], self.noise, sigma, 0)
            images = images + rng.randn([n, c, h, w]) * sigma
        if self.cutout > 0:
            size = self._gate(rng, [n, 1, 1, 1, 1], self.cutout,
                              torch.full([n, 2, 1, 1, 1], self.cutout_size, device=images.device), 0)
            center = rng.rand([n, 2, 1, 1, 1])
            xs = torch.arange(w, device=images.device).reshape(1, 1, 1, -1)
            ys = torch.arange(h, device=images.device).reshape(1, 1, -1, 1)
            keep_x = ((xs + 0.5) / w - center[:, 0]).abs() >= size[:, 0] / 2
            keep_y = ((ys + 0.5) / h - center[:, 1]).abs() >= size[:, 1] / 2
            images = images * torch.logical_or(keep_x, keep_y).to(torch.float32)
        return images

    def _gate(self, rng: RandomSource, shape, multiplier: float, value: torch.Tensor, neutral: float,
              prob: torch.Tensor | None = None) -> torch.Tensor:
        """value where a fresh uniform draw falls below multiplier * p (or `prob`), else `neutral`."""
        prob = multiplier * self.p if prob is None else prob
        return torch.where(rng.rand(shape) < prob, value, torch.full_like(value, neutral))

    def _geometry(self, rng, n, w, h, device) -> torch.Tensor | None:
        """The inverse transform [N, 3, 3] of stages 1 and 2 (output pixel -> input pixel), or None."""
        steps = []
        if self.xflip > 0:
            i = self._gate(rng, [n], self.xflip, torch.floor(rng.rand([n]) * 2), 0)
            steps.append(scale2d(1 / (1 - 2 * i), 1))
        if self.rotate90 > 0:
            i = self._gate(rng, [n], self.rotate90, torch.floor(rng.rand([n]) * 4), 0)
            steps.append(rotate2d(np.pi / 2 * i))       # the inverse of a rotation by -pi/2 i
        if self.xint > 0:
            t = (rng.rand([n, 2]) * 2 - 1) * self.xint_max
            t = self._gate(rng, [n, 1], self.xint, t, 0)
            steps.append(translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h)))
        if self.scale > 0:
            s = self._gate(rng, [n], self.scale, torch.exp2(rng.randn([n]) * self.scale_std), 1)
            steps.append(scale2d(1 / s, 1 / s))
        # Rotation before and after the anisotropic scale: P(either) = rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * self.p).clamp(0, 1))
        if self.rotate > 0:
            theta = (rng.rand([n]) * 2 - 1) * np.pi * self.rotate_max
            steps.append(rotate2d(self._gate(rng, [n], 0, theta, 0, prob=p_rot)))
        if self.aniso > 0:
            s = self._gate(rng, [n], self.aniso, torch.exp2(rng.randn([n]) * self.aniso_std), 1)
            steps.append(scale2d(1 / s, 1 / (1 / s)))    # the inverse of scale2d(s, 1 / s), as rounded
        if self.rotate > 0:
            theta = (rng.rand([n]) * 2 - 1) * np.pi * self.rotate_max
            steps.append(rotate2d(self._gate(rng, [n], 0, theta, 0, prob=p_rot)))
        if self.xfrac > 0:
            t = self._gate(rng, [n, 1], self.xfrac, rng.randn([n, 2]) * self.xfrac_std, 0)
            steps.append(translate2d(-t[:, 0] * w, -t[:, 1] * h))
        if not steps:
            return None
        g_inv = torch.eye(3, device=device)
        for m in steps:
            g_inv = g_inv @ m.to(device)
        return g_inv

    def _warp(self, images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        """Resample images through g_inv at 2x with reflect padding; the wavelet filters keep it alias-free."""
        n, c, h, w = images.shape
        device = images.device
        taps_pad = self.Hz_geom.shape[0] // 4
        # Padding: how far the corners of the output land outside the input, plus the filters' reach.
        cx, cy = (w - 1) / 2, (h - 1) / 2
        corners = matrix([-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1], device=device)    # [4, xyz]
        corners = g_inv @ corners.t()                                                               # [N, xyz, 4]
        reach = corners[:, :2, :].permute(1, 0, 2).flatten(1)                                        # [xy, N * 4]
        margin = torch.cat([-reach, reach]).max(dim=1).values                                       # [x0, y0, x1, y1]
        margin = margin + torch.tensor([taps_pad * 2 - cx, taps_pad * 2 - cy] * 2, device=device)
        margin = margin.max(torch.zeros(4, device=device)).min(torch.tensor([w - 1, h - 1] * 2, device=device,
                                                                             dtype=torch.float32))
        mx0, my0, mx1, my1 = margin.ceil().to(torch.int32)
        images = F.pad(images, pad=[mx0, mx1, my0, my1], mode="reflect")
        g_inv = translate2d((mx0 - mx1) / 2, (my0 - my1) / 2) @ g_inv

        # 2x upsampling, then the transform in the upsampled grid (pixel centres at +0.5).
        images = ops.upsample2d(images, self.Hz_geom, up=2)
        g_inv = scale2d(2, 2, device=device) @ g_inv @ scale2d(1 / 2, 1 / 2, device=device)
        g_inv = translate2d(-0.5, -0.5, device=device) @ g_inv @ translate2d(0.5, 0.5, device=device)

        # affine_grid works in [-1, 1] coordinates of the output and input tensors.
        shape = [n, c, (h + taps_pad * 2) * 2, (w + taps_pad * 2) * 2]
        g_inv = (scale2d(2 / images.shape[3], 2 / images.shape[2], device=device) @ g_inv
                 @ scale2d(1 / (2 / shape[3]), 1 / (2 / shape[2]), device=device))
        grid = F.affine_grid(theta=g_inv[:, :2, :], size=shape, align_corners=False)
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return ops.downsample2d(images, self.Hz_geom, down=2, padding=-taps_pad * 2, flip_filter=True)

    def _color(self, rng, n, c, device) -> torch.Tensor | None:
        """The colour transform [N, 4, 4] acting on homogeneous RGB, or None."""
        luma = torch.as_tensor(np.asarray([1, 1, 1, 0]) / np.sqrt(3), dtype=torch.float32, device=device)
        eye = torch.eye(4, device=device)
        steps = []
        if self.brightness > 0:
            b = self._gate(rng, [n], self.brightness, rng.randn([n]) * self.brightness_std, 0)
            steps.append(translate3d(b, b, b))
        if self.contrast > 0:
            k = self._gate(rng, [n], self.contrast, torch.exp2(rng.randn([n]) * self.contrast_std), 1)
            steps.append(scale3d(k, k, k))
        if self.lumaflip > 0:
            i = self._gate(rng, [n, 1, 1], self.lumaflip, torch.floor(rng.rand([n, 1, 1]) * 2), 0)
            steps.append(eye - 2 * luma.ger(luma) * i)                  # Householder reflection of the luma axis
        if self.hue > 0 and c > 1:
            theta = (rng.rand([n]) * 2 - 1) * np.pi * self.hue_max
            steps.append(rotate3d(luma, self._gate(rng, [n], self.hue, theta, 0)))
        if self.saturation > 0 and c > 1:
            s = self._gate(rng, [n, 1, 1], self.saturation, torch.exp2(rng.randn([n, 1, 1]) * self.saturation_std), 1)
            steps.append(luma.ger(luma) + (eye - luma.ger(luma)) * s)
        if not steps:
            return None
        color = eye
        for m in steps:
            color = m @ color
        return color

    def _filter(self, rng, images: torch.Tensor) -> torch.Tensor:
        """Amplify each of 4 frequency bands by a random gain, keeping the expected power (1/f spectrum)."""
        n, c, h, w = images.shape
        bands = self.Hz_fbank.shape[0]
        assert len(self.imgfilter_bands) == bands
        power = torch.as_tensor(np.array([10, 1, 1, 1]) / 13, dtype=torch.float32, device=images.device)
        gains = torch.ones([n, bands], device=images.device)
        for i, strength in enumerate(self.imgfilter_bands):
            t_i = torch.exp2(rng.randn([n]) * self.imgfilter_std)
            t_i = self._gate(rng, [n], 0, t_i, 1, prob=self.imgfilter * self.p * strength)
            t = torch.ones([n, bands], device=images.device)
            t[:, i] = t_i
            gains = gains * (t / (power * t.square()).sum(dim=-1, keepdim=True).sqrt())
        taps = (gains @ self.Hz_fbank).unsqueeze(1).repeat([1, c, 1]).reshape(n * c, 1, -1)
        pad = self.Hz_fbank.shape[1] // 2
        x = F.pad(images.reshape(1, n * c, h, w), pad=[pad] * 4, mode="reflect")
        x = F.conv2d(x, taps.unsqueeze(2), groups=n * c)
        x = F.conv2d(x, taps.unsqueeze(3), groups=n * c)
        return x.reshape(n, c, h, w)

    def extra_repr(self) -> str:
        on = [k for k in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
                          "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout") if getattr(self, k) > 0]
        return f"p={float(self.p):.4f}, enabled={','.join(on) or 'none'}"


def _apply_color(images: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    n, c, h, w = images.shape
    x = images.reshape(n, c, h * w)
    if c == 3:
        x = color[:, :3, :3] @ x + color[:, :3, 3:]
    elif c == 1:
        # Greyscale: the mean of the RGB rows acts on the single channel.
        gray = color[:, :3, :].mean(dim=1, keepdim=True)
        x = x * gray[:, :, :3].sum(dim=2, keepdim=True) + gray[:, :, 3:]
    else:
        raise ValueError(f"augmentation needs RGB or greyscale images, not {c} channels")
    return x.reshape(n, c, h, w)


def adjust_p(p: torch.Tensor, signs_real_mean: float, target: float, batch_images: int, ada_kimg: float) -> None:
    """ADA's heuristic, in place: p moves by `batch_images / (ada_kimg * 1000)` toward more augmentation
    when D is overconfident on reals (mean sign of its real outputs above `target`), never below 0."""
    adjust = np.sign(signs_real_mean - target) * batch_images / (ada_kimg * 1000)
    p.copy_((p + adjust).max(torch.zeros([], device=p.device)))

