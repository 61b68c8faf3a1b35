"""Projection: optimise a latent so that the generator reproduces a target image.

In W this is the algorithm of NVIDIA's stylegan2-ada-pytorch `projector.py`, step for step and in
the same random-number order, so with the same feature network and seed it follows the same
trajectory: start from the mean w, minimise the perceptual distance with Adam under a learning
rate that ramps up over the first 5 % of steps and down (cosine) over the last 25 %, add Gaussian
noise to w whose scale decays quadratically to zero at 75 % of the steps, and optimise the
per-layer noise inputs too, keeping them white by penalising their autocorrelation at every
scale (and renormalising them after each step). In W+ every layer has its own w, with the same
schedule. StyleGAN3 has no noise inputs; the rest is the same.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..images import to_uint8
from .features import FeatureNet

# The feature networks were made for ~224 px images: larger ones are area-downsampled to this.
FEATURE_SIZE = 256


@dataclass
class StepInfo:
    step: int            # 1-based
    num_steps: int
    dist: float          # perceptual distance before this step's update
    loss: float


@dataclass
class ProjectionResult:
    space: str                    # 'w' or 'w+'
    ws: torch.Tensor              # [num_ws, w_dim]: the latent after the last step, as synthesis takes it
    w_steps: torch.Tensor         # [num_steps, num_ws, w_dim]: the latent after each step
    dists: list[float] = field(default_factory=list)   # distance before each step's update
    noise: dict[str, torch.Tensor] = field(default_factory=dict)   # the optimised noise inputs
    image: np.ndarray | None = None                    # [H, W, C] uint8 of the final latent


def w_stats(G: torch.nn.Module, num_samples: int = 10000, seed: int = 123) -> tuple[np.ndarray, np.float32]:
    """Mean w [1, 1, w_dim] and its scalar spread (RMS distance to the mean), from mapped samples."""
    z = np.random.RandomState(seed).randn(num_samples, G.z_dim)
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(z).to(_device(G)), None)
    w = w[:, :1, :].cpu().numpy().astype(np.float32)        # [N, 1, C]
    w_avg = np.mean(w, axis=0, keepdims=True)
    # numpy float32 scalars throughout, as in the reference: the rounding is part of the trajectory.
    w_std = (np.sum((w - w_avg) ** 2) / num_samples) ** 0.5
    return w_avg, w_std


def learning_rate(t: float, initial: float, rampup: float, rampdown: float) -> float:
    """Cosine ramp-down over the last `rampdown` fraction, linear ramp-up over the first `rampup`."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * np.cos(ramp * np.pi)
    return initial * ramp * min(1.0, t / rampup)


def noise_regularizer(noise: list[torch.Tensor]) -> torch.Tensor | float:
    """Sum of squared 1-pixel autocorrelations (x and y) of each noise map at every octave down to 8 px."""
    reg = 0.0
    for n in noise:
        n = n[None, None, :, :]
        while True:
            reg += (n * torch.roll(n, shifts=1, dims=3)).mean() ** 2
            reg += (n * torch.roll(n, shifts=1, dims=2)).mean() ** 2
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return reg


def to_feature_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] synthesis output -> 0..255, area-downsampled past FEATURE_SIZE."""
    images = (images + 1) * (255 / 2)
    return shrink_for_features(images)


def shrink_for_features(images: torch.Tensor) -> torch.Tensor:
    if images.shape[2] > FEATURE_SIZE:
        images = F.interpolate(images, size=(FEATURE_SIZE, FEATURE_SIZE), mode="area")
    return images


def project(G: torch.nn.Module, target: torch.Tensor | np.ndarray, features: FeatureNet, *, space: str = "w",
            num_steps: int = 1000, w_avg_samples: int = 10000, initial_learning_rate: float = 0.1,
            initial_noise_factor: float = 0.05, lr_rampdown_length: float = 0.25, lr_rampup_length: float = 0.05,
            noise_ramp_length: float = 0.75, regularize_noise_weight: float = 1e5, seed: int | None = 303,
            progress: Callable[[StepInfo], None] | None = None) -> ProjectionResult:
    """Project `target` ([C, H, W] in 0..255, the generator's size) into W or W+ of G.

    `features` maps images in 0..255 to LPIPS-style features. `seed` fixes the random numbers (the
    noise inputs' start and the w noise); None draws from torch's global generator. G is not changed."""
    if space not in ("w", "w+"):
        raise ValueError(f"unknown latent space {space!r}: expected 'w' or 'w+'")
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    device = _device(G)
    target = torch.as_tensor(np.asarray(target) if isinstance(target, np.ndarray) else target)
    want = (G.img_channels, G.img_resolution, G.img_resolution)
    if tuple(target.shape) != want:
        raise ValueError(f"target has shape {tuple(target.shape)}, the generator makes {want} (C, H, W)")
    rng = torch.Generator(device=device)
    if seed is None:
        rng.seed()
    else:
        rng.manual_seed(seed)

    G = copy.deepcopy(G).eval().requires_grad_(False)
    w_avg, w_std = w_stats(G, w_avg_samples)
    noise_bufs = {name: buf for name, buf in G.synthesis.named_buffers() if "noise_const" in name}

    with torch.no_grad():
        target_features = features(shrink_for_features(target.unsqueeze(0).to(device, torch.float32)))

    w_init = np.repeat(w_avg, G.num_ws, axis=1) if space == "w+" else w_avg
    w_opt = torch.tensor(w_init, dtype=torch.float32, device=device, requires_grad=True)
    w_steps = torch.zeros([num_steps, *w_opt.shape[1:]], dtype=torch.float32, device=device)
    optimizer = torch.optim.Adam([w_opt, *noise_bufs.values()], betas=(0.9, 0.999), lr=initial_learning_rate)
    for buf in noise_bufs.values():
        buf[:] = torch.randn(buf.shape, generator=rng, device=device, dtype=buf.dtype)
        buf.requires_grad = True

    dists = []
    for step in range(num_steps):
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(t, initial_learning_rate, lr_rampup_length, lr_rampdown_length)

        w_noise = torch.randn(w_opt.shape, generator=rng, device=device) * w_noise_scale
        ws = w_opt + w_noise
        if space == "w":
            ws = ws.repeat([1, G.num_ws, 1])
        synth_features = features(to_feature_range(G.synthesis(ws, noise_mode="const")))
        dist = (target_features - synth_features).square().sum()
        loss = dist + noise_regularizer(list(noise_bufs.values())) * regularize_noise_weight

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        w_steps[step] = w_opt.detach()[0]
        dists.append(float(dist.detach()))
        with torch.no_grad():
            for buf in noise_bufs.values():
                buf -= buf.mean()
                buf *= buf.square().mean().rsqrt()
        if progress is not None:
            progress(StepInfo(step + 1, num_steps, dists[-1], float(loss.detach())))

    w_steps = w_steps.repeat([1, G.num_ws, 1]) if space == "w" else w_steps
    noise = {name: buf.detach().clone() for name, buf in noise_bufs.items()}
    with torch.no_grad():
        image = to_uint8(G.synthesis(w_steps[-1:], noise_mode="const"))[0]
    return ProjectionResult(space, w_steps[-1].clone(), w_steps, dists, noise, image)


def _device(G: torch.nn.Module) -> torch.device:
    return next(G.parameters()).device
