"""Pivotal tuning (Roich et al. 2021, "Pivotal Tuning for Latent-based Editing of Real Images").

A W projection (the pivot) is close to the target but rarely reaches it. PTI then tunes the
generator's synthesis weights, with the pivot held fixed, until the generator draws the target at
the pivot: an L2 + perceptual loss, Adam at 3e-4, stopping early once the perceptual distance
falls below a threshold. Edits made around the pivot keep working because the rest of the latent
space barely moves; the optional locality regulariser enforces that by keeping the tuned
generator equal to the original at latents drawn towards random w's from the pivot.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..images import check_uint8, from_uint8, to_uint8
from ..progress import Progress, ProgressFn
from .features import FeatureNet
from .losses import Distance, FeatureDistance, as_distance
from .project import ProjectionResult, shrink_for_features, to_feature_range, with_noise

# PTI's early stop: the LPIPS distance at which the tuned generator reproduces the photo well enough.
LPIPS_STOP = 0.06


@dataclass
class TuningResult:
    G: torch.nn.Module                          # the tuned generator (eval, frozen), pivot noise baked in
    ws: torch.Tensor                            # [num_ws, w_dim]: the pivot
    dists: list[float] = field(default_factory=list)
    image: np.ndarray | None = None             # [H, W, C] uint8: the tuned generator at the pivot


def pivotal_tuning(G: torch.nn.Module, target: np.ndarray | torch.Tensor, pivot: ProjectionResult,
                   loss: Distance | FeatureNet, *, num_steps: int = 350, learning_rate: float = 3e-4,
                   dist_threshold: float | None = None, l2_weight: float = 1.0, dist_weight: float = 1.0,
                   locality_weight: float = 0.0, locality_alpha: float = 30.0, locality_samples: int = 1,
                   seed: int | None = 0, progress: ProgressFn | None = None, preview_every: int = 1) -> TuningResult:
    """Tune a copy of G so that it draws `target` ([H, W, C] uint8 at the generator's size) at the
    pivot's latent.

    `dist_threshold` stops early once the distance reaches it; by default PTI's 0.06, which is an
    LPIPS value, so only for a feature-network loss: other losses' distances live on other scales
    (the no-download fallback is already below 0.06 at most pivots) and run every step.

    `progress` gets a Progress('tune') after every update: stats `dist` (at the pivot, before the
    update) and `loss`, and every `preview_every` steps (0: never) `preview`, the tuned generator's
    image [H, W, C] uint8 before the update. Raising from it (e.g. Cancelled) stops the tuning."""
    device = next(G.parameters()).device
    target = check_uint8(target, "target")
    want = (G.img_resolution, G.img_resolution, G.img_channels)
    if tuple(target.shape) != want:
        raise ValueError(f"target has shape {list(target.shape)}, the generator makes {list(want)} (H, W, C)")
    target = from_uint8(target, device)                                            # [1, C, H, W] 0..255
    rng = torch.Generator(device=device)
    rng.manual_seed(seed) if seed is not None else rng.seed()

    # The pivot was found with its own noise maps: they belong to the reconstruction, so keep them.
    original = with_noise(G, pivot.noise)
    tuned = copy.deepcopy(original)
    tuned.synthesis.requires_grad_(True)
    optimizer = torch.optim.Adam(tuned.synthesis.parameters(), lr=learning_rate, betas=(0.9, 0.999))

    ws = pivot.ws.to(device)[None]
    distance = as_distance(loss)
    if dist_threshold is None:
        dist_threshold = LPIPS_STOP if isinstance(distance, FeatureDistance) else 0.0
    distance.set_targets(shrink_for_features(target))
    target_pm1 = target / 127.5 - 1
    dists = []
    start = time.perf_counter()
    for step in range(num_steps):
        synth = tuned.synthesis(ws, noise_mode="const")
        dist = distance(to_feature_range(synth)).sum()
        dists.append(float(dist.detach()))
        if dists[-1] <= dist_threshold:
            break
        total = l2_weight * (synth - target_pm1).square().mean() + dist_weight * dist
        if locality_weight > 0:
            total = total + locality_weight * _locality(original, tuned, ws, distance, locality_alpha,
                                                        locality_samples, rng, l2_weight, dist_weight)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if progress is not None:
            preview = to_uint8(synth.detach())[0] if preview_every and step % preview_every == 0 else None
            progress(Progress("tune", step + 1, num_steps, {"dist": dists[-1], "loss": float(total.detach())},
                              preview=preview, seconds=time.perf_counter() - start))

    tuned.requires_grad_(False)
    with torch.no_grad():
        image = to_uint8(tuned.synthesis(ws, noise_mode="const"))[0]
    return TuningResult(tuned, pivot.ws.clone(), dists, image)


def _locality(original, tuned, ws_pivot, distance: Distance, alpha, samples, rng, l2_weight, dist_weight):
    """L2 + perceptual difference between the original and tuned generators at latents a fixed
    distance `alpha` from the pivot, towards random mapped w's."""
    z = torch.randn([samples, original.z_dim], generator=rng, device=ws_pivot.device)
    with torch.no_grad():
        w_rand = original.mapping(z, None)[:, :1]                        # [S, 1, C]
        step = w_rand - ws_pivot[:, :1]
        w_near = ws_pivot[:, :1] + alpha * step / step.norm(dim=2, keepdim=True)
        w_near = w_near.repeat([1, original.num_ws, 1])
        ref = original.synthesis(w_near, noise_mode="const")
    # A fresh copy of the distance measures against these images, leaving the target's in place.
    near = copy.copy(distance)
    near.set_targets(to_feature_range(ref))
    got = tuned.synthesis(w_near, noise_mode="const")
    return l2_weight * (got - ref).square().mean() + dist_weight * near(to_feature_range(got)).mean()
