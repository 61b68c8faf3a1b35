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
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .._errors import ParamError
from .._memory import check_held
from ..images import check_uint8, from_uint8, to_uint8
from ..networks.stylegan3 import set_input_transform  # noqa: F401 (also imported from here)
from ..progress import Progress, ProgressFn
from .features import FeatureNet
from .losses import Distance, as_distance

# The feature networks were made for ~224 px images: larger ones are area-downsampled to this.
FEATURE_SIZE = 256


@dataclass
class ProjectionResult:
    space: str                    # 'w' or 'w+'
    ws: torch.Tensor              # [num_ws, w_dim]: the latent after the last step, as synthesis takes it
    w_steps: torch.Tensor         # [num_steps, num_ws, w_dim]: the latent after each step
    dists: list[float] = field(default_factory=list)   # distance before each step's update
    noise: dict[str, torch.Tensor] = field(default_factory=dict)   # layer -> optimised noise map [R, R]
    image: np.ndarray | None = None                    # [H, W, C] uint8 of the final latent
    transform: torch.Tensor | None = None              # [3, 3] StyleGAN3 input transform it was rendered with


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
    """Sum over targets and layers of the squared 1-pixel autocorrelations (x and y) of each noise
    map [B, 1, R, R], at every octave down to 8 px: zero for white noise."""
    reg = 0.0
    for n in noise:
        while True:
            reg += ((n * torch.roll(n, shifts=1, dims=3)).mean(dim=[1, 2, 3]) ** 2).sum()
            reg += ((n * torch.roll(n, shifts=1, dims=2)).mean(dim=[1, 2, 3]) ** 2).sum()
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return reg


def noise_layers(G: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The synthesis layers that add a noise input ('const' noise: their `noise_const` buffer)."""
    return {name: m for name, m in G.synthesis.named_modules() if "noise_const" in m._buffers}


def with_noise(G: torch.nn.Module, noise: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A copy of G (eval, frozen) whose noise inputs are `noise` (layer name -> [R, R] map, as a
    projection found them): its 'const' noise mode then draws what the projection drew. G is untouched."""
    layers = noise_layers(G)
    if set(noise) != set(layers):
        missing, extra = sorted(set(layers) - set(noise)), sorted(set(noise) - set(layers))
        raise ValueError(f"noise maps do not fit the generator (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, layer in layers.items():
        if tuple(noise[name].shape) != tuple(layer.noise_const.shape):
            raise ValueError(f"noise map {name} has shape {list(noise[name].shape)}, the generator's is "
                             f"{list(layer.noise_const.shape)}")
    G = copy.deepcopy(G).eval().requires_grad_(False)
    for name, layer in noise_layers(G).items():
        layer.noise_const = noise[name].detach().to(layer.noise_const.device, torch.float32).clone()
    return G


def to_feature_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] synthesis output -> 0..255, area-downsampled past FEATURE_SIZE."""
    images = (images + 1) * (255 / 2)
    return shrink_for_features(images)


def shrink_for_features(images: torch.Tensor) -> torch.Tensor:
    if images.shape[2] > FEATURE_SIZE:
        images = F.interpolate(images, size=(FEATURE_SIZE, FEATURE_SIZE), mode="area")
    return images


def project(G: torch.nn.Module, target: np.ndarray | torch.Tensor, loss: Distance | FeatureNet,
            progress: ProgressFn | None = None, **kwargs) -> ProjectionResult:
    """Project one `target` ([H, W, C] uint8 at the generator's size) into W or W+ of G; see
    project_batch. Progress previews are the one target's [H, W, C] uint8 image."""
    target = check_uint8(target, "target")
    return project_batch(G, target[None], loss, progress=_first_preview(progress), **kwargs)[0]


def _first_preview(progress: ProgressFn | None) -> ProgressFn | None:
    """The callback, given the first image of each batched preview."""
    if progress is None:
        return None
    return lambda e: progress(e if e.preview is None else dataclasses.replace(e, preview=e.preview[0]))


def project_batch(G: torch.nn.Module, targets: np.ndarray | torch.Tensor, loss: Distance | FeatureNet, *, space: str = "w",
                  num_steps: int = 1000, w_avg_samples: int = 10000, initial_learning_rate: float = 0.1,
                  initial_noise_factor: float = 0.05, lr_rampdown_length: float = 0.25,
                  lr_rampup_length: float = 0.05, noise_ramp_length: float = 0.75,
                  regularize_noise_weight: float = 1e5, seed: int | None = 303,
                  transform: torch.Tensor | np.ndarray | None = None, progress: ProgressFn | None = None,
                  preview_every: int = 1) -> list[ProjectionResult]:
    """Project targets [B, H, W, C] uint8 together: one batched forward and backward per step.

    Adam works element by element and each target's loss depends only on its own latent and noise
    maps, so this is B independent projections, computed at once. `loss` is a Distance, or a
    feature network (images in 0..255 -> LPIPS-style features) whose feature distance is used.
    `seed` fixes the random numbers (the noise maps' start, then the w noise of each step); None
    draws a fresh seed. G itself is not changed.

    `transform` ([3, 3], StyleGAN3 only) is the inverse transform of the output image that the
    generator's Fourier input applies (`G.synthesis.input.transform`, NVIDIA's gen_images.py
    --rotate/--translate): set in the copy of G that is optimised, it renders every step in that
    pose, so a target photographed rotated or shifted finds the latent of the upright face.

    `progress` gets a Progress('project') after every step: stats `dist` (before the update, mean
    over targets), `loss` and `psnr` (the step's image against its target, mean over targets), and
    every `preview_every` steps (0: never) `preview`, the step's images [B, H, W, C] uint8 (w with
    this step's w noise, before the update). Raising from it (e.g. Cancelled) stops the projection."""
    if space not in ("w", "w+"):
        raise ParamError(f"unknown latent {{space}} {space!r}: expected 'w' or 'w+'", "space")
    if num_steps < 1:
        raise ParamError(f"{{num_steps}} must be at least 1, got {num_steps}", "num_steps")
    device = _device(G)
    targets = check_uint8(targets, "targets", batch=True)
    want = (G.img_resolution, G.img_resolution, G.img_channels)
    if tuple(targets.shape[1:]) != want or len(targets) == 0:
        raise ValueError(f"targets have shape {list(targets.shape)}: the generator makes {list(want)} (H, W, C)")
    batch = len(targets)
    # The trajectory keeps every step's latent (NVIDIA's projector returns them all): sized first.
    check_held(num_steps * batch * (G.num_ws if space == "w+" else 1) * G.w_dim * 4,
               f"a projection of {num_steps} steps", "use fewer steps")
    targets = from_uint8(targets, device)                                          # [B, C, H, W] 0..255
    rng = torch.Generator(device=device)
    rng.manual_seed(seed) if seed is not None else rng.seed()

    G = copy.deepcopy(G).eval().requires_grad_(False)
    if transform is not None:
        transform = set_input_transform(G, transform)
    w_avg, w_std = w_stats(G, w_avg_samples)
    distance = as_distance(loss)
    distance.set_targets(shrink_for_features(targets))

    w_init = np.repeat(w_avg, G.num_ws, axis=1) if space == "w+" else w_avg      # [1, 1 | num_ws, C]
    w_opt = torch.tensor(np.repeat(w_init, batch, axis=0), dtype=torch.float32, device=device, requires_grad=True)
    w_steps = torch.zeros([num_steps, *w_opt.shape], dtype=torch.float32, device=device)
    # Each target gets its own noise maps: the layers' const noise becomes [B, 1, R, R].
    noise = {}
    for name, layer in noise_layers(G).items():
        r = layer.noise_const.shape[-1]
        layer.noise_const = torch.randn([batch, 1, r, r], generator=rng, device=device).requires_grad_(True)
        noise[name] = layer.noise_const
    optimizer = torch.optim.Adam([w_opt, *noise.values()], betas=(0.9, 0.999), lr=initial_learning_rate)

    dists = []
    start = time.perf_counter()
    for step in range(num_steps):
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(t, initial_learning_rate, lr_rampup_length, lr_rampdown_length)

        w_noise = torch.randn(w_opt.shape, generator=rng, device=device) * w_noise_scale
        ws = w_opt + w_noise
        if space == "w":
            ws = ws.repeat([1, G.num_ws, 1])
        synth = G.synthesis(ws, noise_mode="const")
        dist = distance(to_feature_range(synth))                                        # [B]
        total = dist.sum() + noise_regularizer(list(noise.values())) * regularize_noise_weight

        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        w_steps[step] = w_opt.detach()
        dists.append(dist.detach().cpu())
        with torch.no_grad():
            for n in noise.values():
                n -= n.mean(dim=[1, 2, 3], keepdim=True)
                n *= n.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        if progress is not None:
            progress(_step_event(step, num_steps, dist, total, synth.detach(), targets, preview_every, start))

    if space == "w":
        w_steps = w_steps.repeat([1, 1, G.num_ws, 1])
    with torch.no_grad():
        images = to_uint8(G.synthesis(w_steps[-1], noise_mode="const"))
    dists = torch.stack(dists, dim=1)                                              # [B, num_steps]
    return [ProjectionResult(space, w_steps[-1, i].clone(), w_steps[:, i].clone(), dists[i].tolist(),
                             {k: n[i, 0].detach().clone() for k, n in noise.items()}, images[i], transform)
            for i in range(batch)]


def _step_event(step, num_steps, dist, total, synth, targets, preview_every, start) -> Progress:
    """One step's Progress: distance, loss, the step's PSNR against its targets, a preview now and then."""
    with torch.no_grad():
        mse = ((synth.float() + 1) * 127.5).clamp(0, 255).sub(targets).square().mean(dim=[1, 2, 3])
        psnr = float((10 * torch.log10(255 ** 2 / mse.clamp(min=1e-10))).mean())
    preview = to_uint8(synth) if preview_every and step % preview_every == 0 else None
    return Progress("project", step + 1, num_steps, {"dist": float(dist.detach().mean()), "loss": float(total.detach()),
                                                     "psnr": psnr}, preview=preview, seconds=time.perf_counter() - start)


def _device(G: torch.nn.Module) -> torch.device:
    return next(G.parameters()).device
