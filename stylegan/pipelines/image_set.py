"""Write an image set to a folder: one file per seed, resumable, shardable across processes.

Under torchrun every rank takes seeds[rank::world_size] and writes only its own files, so a
million-image set scales out without coordination; files already present are skipped, so an
interrupted run picks up where it stopped."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .._files import atomic_output, sweep_stale_temps
from .generate import generate_batches
from .writer import FORMATS, ImageWriter


@dataclass
class ImageSetSummary:
    written: int
    skipped: int
    seconds: float


def seed_filename(seed: int, fmt: str) -> str:
    return f"seed{seed:04d}.{fmt}"


def dist_rank() -> tuple[int, int]:
    """(rank, world_size) from torchrun's environment; (0, 1) when launched plainly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def prepare_outdir(outdir: str | os.PathLike) -> Path:
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"output folder {outdir} exists and is not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(outdir)  # left by a run that was killed outright
    return outdir


def grid_image(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[N <= rows*cols, H, W, C] -> one [rows*H, cols*W, C] image, row-major, black where empty."""
    n, h, w, c = images.shape
    assert n <= rows * cols
    canvas = np.zeros([rows * cols, h, w, c], np.uint8)
    canvas[:n] = images
    return canvas.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def _save_w(w: np.ndarray, path: Path) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, w)


def write_image_set(G, seeds: Sequence[int], outdir: str | os.PathLike, *, psi: float = 1.0,
                    truncation_cutoff: int | None = None, noise_mode: str = "const", class_idx: int | None = None,
                    batch_size: int = 8, fmt: str = "png", overwrite: bool = False, save_w: bool = False,
                    rank: int = 0, world_size: int = 1, progress: bool = True) -> ImageSetSummary:
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {fmt!r}: expected one of {sorted(FORMATS)}")
    outdir = prepare_outdir(outdir)
    mine = list(seeds)[rank::world_size]
    todo = [s for s in mine if overwrite or not (outdir / seed_filename(s, fmt)).exists()]
    skipped = len(mine) - len(todo)
    start = time.perf_counter()
    done = 0
    with ImageWriter() as writer:
        for batch in generate_batches(G, todo, psi, truncation_cutoff, noise_mode, class_idx, batch_size):
            for seed, img, w in zip(batch.seeds, batch.images, batch.ws.numpy()):
                if save_w:
                    _save_w(w, outdir / f"seed{seed:04d}.w.npy")
                writer.put(img, outdir / seed_filename(seed, fmt), **FORMATS[fmt])
            done += len(batch.seeds)
            if progress:
                _report(done, len(todo), time.perf_counter() - start, rank, world_size)
    if progress and todo:
        print(file=sys.stderr)
    return ImageSetSummary(done, skipped, time.perf_counter() - start)


def _report(done: int, total: int, seconds: float, rank: int, world_size: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    tag = f"[rank {rank}/{world_size}] " if world_size > 1 else ""
    rate = done / seconds if seconds > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else 0.0
    print(f"\r{tag}[{'#' * filled}{'.' * (width - filled)}] {done}/{total} images  {rate:.2f} img/s  "
          f"eta {eta:.0f}s", end="", file=sys.stderr, flush=True)


def barrier() -> None:
    """Wait for every rank (no-op when not launched by torchrun)."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def write_grids(seeds: Sequence[int], outdir: str | os.PathLike, grid: tuple[int, int], fmt: str = "png",
                overwrite: bool = False) -> list[Path]:
    """Compose the per-seed images already in `outdir` into grids of rows x cols consecutive seeds."""
    from PIL import Image
    from .writer import save_image
    outdir = Path(outdir)
    rows, cols = grid
    per = rows * cols
    written = []
    for k in range(0, len(seeds), per):
        path = outdir / f"grid{k // per:04d}.{fmt}"
        if path.exists() and not overwrite:
            continue
        images = np.stack([np.asarray(Image.open(outdir / seed_filename(s, fmt))) for s in seeds[k:k + per]])
        if images.ndim == 3:
            images = images[..., None]
        save_image(grid_image(images, rows, cols), path, **FORMATS[fmt])
        written.append(path)
    return written
