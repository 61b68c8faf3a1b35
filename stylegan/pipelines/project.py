"""Photos -> latents: project a folder of target images, in batches, resumable, shardable.

For target `NAME.png` the outputs are
    NAME.w.safetensors      the latent in the toolkit's latent format (space, network digest, source)
    NAME_projected_w.npz    the same w in the layout of NVIDIA's projector (key 'w', [1, num_ws, w_dim])
    NAME_proj.png           the generator's image at the latent
    NAME_compare.png        target | projection side by side
    NAME_pti.stylegan       with pivotal tuning: the tuned generator (NAME_pti.png its image)
and one row per target in `metrics.csv`. `NAME_compare.png` is written last, so its presence
means the target is done and a rerun skips it."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from .._files import atomic_output, sweep_stale_temps
from ..faces import read_photo
from ..inversion import pivotal_tuning, project_batch
from ..inversion.losses import Distance, ssim
from .writer import save_image

TARGET_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
METRICS = ("target", "space", "steps", "psnr", "ssim", "pti_steps", "pti_psnr", "pti_ssim", "identity")


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


def project_targets(G: torch.nn.Module, targets: Sequence[str | os.PathLike], outdir: str | os.PathLike,
                    loss_factory: Callable[[], Distance], *, space: str = "w", num_steps: int = 1000,
                    batch_size: int = 4, seed: int = 303, pti_steps: int = 0, network_digest: str | None = None,
                    identity: Callable[[np.ndarray, np.ndarray], float | None] | None = None,
                    overwrite: bool = False, rank: int = 0, world_size: int = 1,
                    progress: Callable[[str, int, int], None] | None = None) -> ProjectSummary:
    """Project every target into `outdir` (see the module doc for the files). A target that cannot
    be read is recorded in the summary and the others carry on."""
    from ..io.latents import save_latents
    from ..loaders import save
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(outdir)
    summary = ProjectSummary()
    todo: list[tuple[str, np.ndarray]] = []
    for path in list(find_targets(targets))[rank::world_size]:
        name = path.stem
        if (outdir / f"{name}_compare.png").exists() and not overwrite:
            summary.skipped.append(name)
            continue
        try:
            todo.append((name, read_target(path, G.img_resolution)))
        except ValueError as e:
            summary.failed[str(path)] = str(e).removeprefix(f"{path}: ")

    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        batch = torch.from_numpy(np.stack([t for _, t in chunk])).float()
        report = (lambda info: progress("project", info.step, info.num_steps)) if progress else None
        results = project_batch(G, batch, loss_factory(), space=space, num_steps=num_steps, seed=seed,
                                progress=report)
        for (name, target), result in zip(chunk, results):
            target_hwc = target.transpose(1, 2, 0)
            row = {"target": name, "space": space, "steps": num_steps, "psnr": psnr(result.image, target_hwc),
                   "ssim": image_ssim(result.image, target_hwc)}
            latent = result.ws[:1] if space == "w" else result.ws[None]      # w: [1, w_dim]; w+: [1, num_ws, w_dim]
            save_latents(outdir / f"{name}.w.safetensors", latent.cpu(), space=space,
                         network_digest=network_digest, source=name, overwrite=True)
            with atomic_output(outdir / f"{name}_projected_w.npz") as tmp, open(tmp, "wb") as f:
                np.savez(f, w=result.ws[None].cpu().numpy())
            save_image(result.image, outdir / f"{name}_proj.png")
            final = result.image
            if pti_steps > 0:
                report = (lambda info: progress("tune", info.step, info.num_steps)) if progress else None
                tuned = pivotal_tuning(G, torch.from_numpy(target).float(), result, loss_factory(),
                                       num_steps=pti_steps, seed=seed, progress=report)
                save({"G_ema": tuned.G}, outdir / f"{name}_pti.stylegan", overwrite=True)
                save_image(tuned.image, outdir / f"{name}_pti.png")
                row.update(pti_steps=len(tuned.dists), pti_psnr=psnr(tuned.image, target_hwc),
                           pti_ssim=image_ssim(tuned.image, target_hwc))
                final = tuned.image
            if identity is not None:
                row["identity"] = identity(target_hwc, final)
            # Ranks write their own table: no two processes rewrite one file.
            _append_metrics(outdir / ("metrics.csv" if world_size == 1 else f"metrics.rank{rank}.csv"), row)
            save_image(np.concatenate([target_hwc, final], axis=1), outdir / f"{name}_compare.png")
            summary.done.append(name)
    return summary


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
    return f"{v:.4f}" if isinstance(v, float) else str(v)
