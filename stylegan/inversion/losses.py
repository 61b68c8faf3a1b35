"""Distances between generated images and targets, for projection and tuning.

Every distance is measured on images in 0..255 and returns one value per target [B]. A feature
network (images -> [B, F]) becomes a distance through `FeatureDistance`: the summed squared
difference of features, which for LPIPS-shaped features is the LPIPS distance. With no perceptual
network downloaded, the pieces at hand still make a usable loss: the features of the
discriminator every NVIDIA pickle carries, plain pixels, and MS-SSIM (`default_distance`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .features import FeatureNet


class Distance:
    """Target-aware distance: `set_targets(targets)` once, then `distance(images)` -> [B]."""

    def set_targets(self, targets: torch.Tensor) -> None:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class FeatureDistance(Distance):
    def __init__(self, features: FeatureNet):
        self.features = features
        self.target_features: torch.Tensor | None = None

    def set_targets(self, targets: torch.Tensor) -> None:
        with torch.no_grad():
            self.target_features = self.features(targets)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (self.target_features - self.features(images)).square().sum(dim=1)


class PixelDistance(Distance):
    """Mean squared error in units of the full range (0..1)."""

    def set_targets(self, targets: torch.Tensor) -> None:
        self.targets = targets / 255

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images / 255 - self.targets).square().mean(dim=[1, 2, 3])


class MSSSIMDistance(Distance):
    """1 - MS-SSIM (Wang et al. 2003): structure at several scales, insensitive to small shifts in
    brightness. Scales that would shrink the image below the 11-tap window are left out."""

    WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

    def set_targets(self, targets: torch.Tensor) -> None:
        self.targets = targets

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return 1 - ms_ssim(images, self.targets)


class Sum(Distance):
    def __init__(self, terms: Sequence[tuple[float, Distance]]):
        self.terms = list(terms)

    def set_targets(self, targets: torch.Tensor) -> None:
        for _, d in self.terms:
            d.set_targets(targets)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return sum(w * d(images) for w, d in self.terms)


class DiscriminatorFeatures(torch.nn.Module):
    """The activations after each block of a StyleGAN2 discriminator, normalised per pixel over
    channels and scaled by 1/sqrt(h w), as LPIPS treats VGG's: a discriminator has learnt what
    makes an image look like the training data, which is what a projection should match."""

    def __init__(self, D: torch.nn.Module):
        super().__init__()
        self.D = D

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x, img = None, images / 127.5 - 1
        taps = []
        for res in self.D.block_resolutions:
            x, img = getattr(self.D, f"b{res}")(x, img)
            t = x / (x.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
            taps.append(t.flatten(1) / np.sqrt(t.shape[2] * t.shape[3]))
        return torch.cat(taps, dim=1)


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    return g / g.sum()


def _ssim_terms(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM and mean contrast-structure term, on 0..255 images [B, C, H, W]."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ch = a.shape[1]
    k = len(window)

    def blur(x):   # separable Gaussian, valid region only
        x = F.conv2d(x, window.reshape(1, 1, 1, k).expand(ch, 1, 1, k), groups=ch)
        return F.conv2d(x, window.reshape(1, 1, k, 1).expand(ch, 1, k, 1), groups=ch)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.square()
    var_b = blur(b * b) - mu_b.square()
    cov = blur(a * b) - mu_a * mu_b
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    ssim = (2 * mu_a * mu_b + c1) / (mu_a.square() + mu_b.square() + c1) * cs
    return ssim.mean(dim=[1, 2, 3]), cs.mean(dim=[1, 2, 3])


def _window_for(x: torch.Tensor) -> torch.Tensor:
    k = min(11, *x.shape[2:])
    return _gaussian_window(k - (k % 2 == 0), device=x.device)   # odd, and no wider than the image


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM of 0..255 images [B, C, H, W] (Gaussian window of 11 taps, sigma 1.5): [B]."""
    return _ssim_terms(a, b, _window_for(a))[0]


def ms_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of 0..255 images [B, C, H, W]: [B]. The scale weights are renormalised over the
    scales that fit the window; terms are clamped above 0 so the product stays differentiable."""
    window = _window_for(a)
    scales = 1
    while scales < len(MSSSIMDistance.WEIGHTS) and min(a.shape[2:]) >> scales >= len(window):
        scales += 1
    weights = torch.tensor(MSSSIMDistance.WEIGHTS[:scales], device=a.device)
    weights = weights / weights.sum()
    out = torch.ones(a.shape[0], device=a.device)
    for i in range(scales):
        s, cs = _ssim_terms(a, b, window)
        out = out * (s if i == scales - 1 else cs).clamp(min=1e-6) ** weights[i]
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return out


def as_distance(loss: Distance | FeatureNet) -> Distance:
    """A Distance as is; a feature network (images -> features) as its feature distance."""
    return loss if isinstance(loss, Distance) else FeatureDistance(loss)


def default_distance(D: torch.nn.Module | None) -> Distance:
    """The loss used when no perceptual network is given: discriminator features + MS-SSIM +
    pixels, or pixels alone without a discriminator. `benchmarks/projection_losses.py` measured
    these best (or within 0.5 dB of best) in PSNR on in-domain targets, W and W+, SG2 and SG3."""
    if D is None:
        return PixelDistance()
    return Sum([(1.0, FeatureDistance(DiscriminatorFeatures(D))), (1.0, MSSSIMDistance()), (1.0, PixelDistance())])
