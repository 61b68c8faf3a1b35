"""Photos -> latents: project a folder of target images, in batches, resumable, shardable.

For target `NAME.png` the outputs are
    NAME.w.safetensors      the latent in the toolkit's latent format (space, network digest, source)
    NAME_projected_w.npz    the same w in the layout of NVIDIA's projector (key 'w', [1, num_ws, w_dim])
    NAME_proj.png           the generator's image at the latent
    NAME_compare.png        target | projection side by side
    NAME_pti.stylegan       with pivotal tuning: the tuned generator (NAME_pti.png its image)
    NAME_progress.mp4       with video=True: target | projection every few steps, ending on NAME_proj.png
and one row per target in `metrics.csv`. `NAME_compare.png` is written last, so its presence
means the target is done and a rerun skips it. The folder's run record (see manifest.py) keeps
the settings that decide the results, so a rerun with other settings stops instead of mixing two
sets of projections."""
from __future__ import annotations

import csv
import math
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from .._files import atomic_output, sweep_stale_temps
from ..faces import read_photo
from ..images import to_uint8
from ..inversion import pivotal_tuning, project_batch
from ..inversion.features import FeatureNet
from ..inversion.losses import DiscriminatorFeatures, Distance, FeatureDistance, Sum, as_distance, ssim
from ..inversion.project import shrink_for_features
from ..provenance import Provenance, file_digest
from .manifest import check_run_record
from .video import video_writer
from .writer import save_image

TARGET_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
METRICS = ("target", "space", "steps", "psnr", "ssim", "lpips", "pti_steps", "pti_psnr", "pti_ssim", "pti_lpips",
           "identity")
# A progress video gets about this many frames, whatever the step count (a short clip at VIDEO_FPS).
VIDEO_FRAMES, VIDEO_FPS = 100, 25


@dataclass
class ProjectSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def find_targets(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        out += sorted(c for c in p.iterdir() if c.suffix.lower() in TARGET_SUFFIXES) if p.is_dir() else [p]
    return out


def read_target(path: Path, resolution: int) -> np.ndarray:
    """A square image as [3, R, R] uint8 at the generator's resolution; other shapes are refused."""
    img = read_photo(path)
    h, w, _ = img.shape
    if h != w:
        raise ValueError(f"{path}: {w}x{h} is not square: crop the face first (`stylegan align`)")
    if h != resolution:
        img = np.asarray(Image.fromarray(img).resize((resolution, resolution), Image.Resampling.LANCZOS))
    return img.transpose(2, 0, 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255 ** 2 / mse))


def image_ssim(a: np.ndarray, b: np.ndarray) -> float:
    t = lambda x: torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None]  # noqa: E731
    return float(ssim(t(a), t(b))[0])


def perceptual_net(loss: Distance | FeatureNet) -> FeatureNet | None:
    """The feature network of a perceptual (LPIPS-style) loss, also as a term of a sum; None when
    the loss has none. The discriminator's features of the fallback loss are no perceptual metric."""
    loss = as_distance(loss)
    if isinstance(loss, FeatureDistance):
        return None if isinstance(loss.features, DiscriminatorFeatures) else loss.features
    if isinstance(loss, Sum):
        return next((net for _, d in loss.terms if (net := perceptual_net(d)) is not None), None)
    return None


def feature_distance(net: FeatureNet, a: np.ndarray, b: np.ndarray, device: torch.device | str = "cpu") -> float:
    """The distance projection minimises, between two uint8 [H, W, C] images: summed squared feature
    differences, past FEATURE_SIZE on area-downsampled images (LPIPS, for LPIPS-shaped features)."""
    def features(x):
        return net(shrink_for_features(torch.tensor(x).permute(2, 0, 1)[None].to(device, torch.float32)))
    with torch.no_grad():
        return float((features(a) - features(b)).square().sum())


def projection_settings(network_digest: str, space: str, num_steps: int, seed: int | None, loss: str | None,
                        pti_steps: int = 0) -> dict:
    """What decides a projection folder's results, for its run record."""
    return {"network": network_digest, "space": space, "steps": int(num_steps), "seed": seed, "loss": loss,
            "pti_steps": int(pti_steps) if pti_steps > 0 else None}


def video_every(num_steps: int) -> int:
    """Steps between progress-video frames: about VIDEO_FRAMES frames for any run."""
    return max(1, math.ceil(num_steps / VIDEO_FRAMES))


def project_targets(G: torch.nn.Module, targets: Sequence[str | os.PathLike], outdir: str | os.PathLike,
                    loss_factory: Callable[[], Distance], *, space: str = "w", num_steps: int = 1000,
                    batch_size: int = 4, seed: int = 303, pti_steps: int = 0, network_digest: str | None = None,
                    identity: Callable[[np.ndarray, np.ndarray], float | None] | None = None,
                    loss_name: str | None = None, video: bool = False, overwrite: bool = False, rank: int = 0,
                    world_size: int = 1, provenance: Provenance | None = None,
                    progress: Callable[[str, int, int, dict], None] | None = None) -> ProjectSummary:
    """Project every target into `outdir` (see the module doc for the files). A target that cannot
    be read is recorded in the summary and the others carry on.

    `loss_name` names the loss `loss_factory` makes, for the run record: a folder made with other
    settings (network, space, num_steps, seed, loss_name, pti_steps) raises RunMismatchError
    unless `overwrite`. `video` writes each target's progress video from the frames the
    projection renders anyway (every `video_every(num_steps)` steps, then the final image).
    Images carry `provenance` (what the caller knows) completed here: NAME_proj.png and NAME_pti.png
    are synthetic, NAME_compare.png and the video composites (the target photo beside them)."""
    from torch_utils.misc import network_digest as digest_of
    from ..io.latents import save_latents
    from ..loaders import save
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    network_digest = network_digest or digest_of(G)
    check_run_record(outdir, projection_settings(network_digest, space, num_steps, seed, loss_name, pti_steps),
                     overwrite, outputs="*_compare.png")
    sweep_stale_temps(outdir)
    summary = ProjectSummary()
    todo: list[tuple[str, np.ndarray]] = []
    photos: dict[str, str] = {}
    for path in list(find_targets(targets))[rank::world_size]:
        name = path.stem
        if (outdir / f"{name}_compare.png").exists() and not overwrite:
            summary.skipped.append(name)
            continue
        try:
            todo.append((name, read_target(path, G.img_resolution)))
            photos[name] = file_digest(path)
        except ValueError as e:
            summary.failed[str(path)] = str(e).removeprefix(f"{path}: ")

    device = next(G.parameters()).device
    made = (provenance or Provenance()).with_(
        operation="project", network=network_digest, details={"space": space, "steps": int(num_steps)})
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        batch = torch.from_numpy(np.stack([t for _, t in chunk])).float()
        loss = loss_factory()
        lpips_net = perceptual_net(loss)
        with ExitStack() as videos:
            appends = [videos.enter_context(video_writer(outdir / f"{name}_progress.mp4", VIDEO_FPS,
                                                         provenance=made.with_(kind="composite", photo=photos[name])))
                       for name, _ in chunk] if video else []
            results = project_batch(G, batch, loss, space=space, num_steps=num_steps, seed=seed,
                                    progress=_step_hook(progress, appends, chunk, batch, video_every(num_steps)))
            for append, (_, target), result in zip(appends, chunk, results):
                append(np.concatenate([target.transpose(1, 2, 0), result.image], axis=1))
        for (name, target), result in zip(chunk, results):
            target_hwc = target.transpose(1, 2, 0)
            row = {"target": name, "space": space, "steps": num_steps, "psnr": psnr(result.image, target_hwc),
                   "ssim": image_ssim(result.image, target_hwc)}
            if lpips_net is not None:
                row["lpips"] = feature_distance(lpips_net, target_hwc, result.image, device)
            latent = result.ws[:1] if space == "w" else result.ws[None]      # w: [1, w_dim]; w+: [1, num_ws, w_dim]
            save_latents(outdir / f"{name}.w.safetensors", latent.cpu(), space=space,
                         network_digest=network_digest, source=name, overwrite=True)
            with atomic_output(outdir / f"{name}_projected_w.npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, w=result.ws[None].cpu().numpy())
            mine = made.with_(photo=photos[name], latent=file_digest(outdir / f"{name}.w.safetensors"))
            save_image(result.image, outdir / f"{name}_proj.png", mine.with_(kind="synthetic"))
            final = result.image
            if pti_steps > 0:
                report = (lambda info: progress("tune", info.step, info.num_steps, {"loss": info.loss})) \
                    if progress else None
                tuned = pivotal_tuning(G, torch.tensor(target).float(), result, loss_factory(),
                                       num_steps=pti_steps, seed=seed, progress=report)
                save({"G_ema": tuned.G}, outdir / f"{name}_pti.stylegan", overwrite=True)
                mine = mine.with_(operation="tune", details={"pti_steps": int(pti_steps)})
                save_image(tuned.image, outdir / f"{name}_pti.png", mine.with_(kind="synthetic"))
                row.update(pti_steps=len(tuned.dists), pti_psnr=psnr(tuned.image, target_hwc),
                           pti_ssim=image_ssim(tuned.image, target_hwc))
                if lpips_net is not None:
                    row["pti_lpips"] = feature_distance(lpips_net, target_hwc, tuned.image, device)
                final = tuned.image
            if identity is not None:
                row["identity"] = identity(target_hwc, final)
            # Ranks write their own table: no two processes rewrite one file.
            _append_metrics(outdir / ("metrics.csv" if world_size == 1 else f"metrics.rank{rank}.csv"), row)
            save_image(np.concatenate([target_hwc, final], axis=1), outdir / f"{name}_compare.png",
                       mine.with_(kind="composite"))
            summary.done.append(name)
    return summary


def _step_hook(progress, appends, chunk, targets, every):
    """The projection's per-step callback: the progress bar (PSNR against `targets`, the chunk's
    float [B, C, H, W] batch), and every `every` steps a video frame (target | the step's image)
    per target."""
    if progress is None and not appends:
        return None

    def hook(info):
        if progress is not None:
            stats = {"loss": info.loss}
            if info.images is not None:   # the step's own image: PSNR costs one comparison, no render
                mse = ((info.images.float() + 1) * 127.5).clamp(0, 255).sub(targets).square().mean(dim=[1, 2, 3])
                stats["psnr"] = float((10 * torch.log10(255 ** 2 / mse.clamp(min=1e-10))).mean())
            progress("project", info.step, info.num_steps, stats)
        if appends and (info.step - 1) % every == 0:
            for append, (_, target), image in zip(appends, chunk, to_uint8(info.images)):
                append(np.concatenate([target.transpose(1, 2, 0), image], axis=1))
    return hook


def _append_metrics(path: Path, row: dict) -> None:
    """Add or replace the target's row; the file is rewritten whole, atomically."""
    rows = []
    if path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("target") != row["target"]]
    rows.append({k: _fmt(row.get(k)) for k in METRICS})
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(v) -> str:
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)     # 6 digits: an LPIPS near 0 keeps them
