"""Write an image set to a folder: one file per seed, resumable, shardable across processes.

Under torchrun every rank takes seeds[rank::world_size] and writes only its own files, so a
million-image set scales out without coordination; files already present are skipped, so an
interrupted run picks up where it stopped."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .._files import ensure_writable_dir, sweep_stale_temps
from ..progress import Progress, ProgressFn, emit
from ..provenance import Provenance
from .checks import check_batch_size, check_noise_mode, check_psi
from .generate import map_seeds, synthesize
from ..seeds import check_seeds, class_labels, parse_int_list
from .manifest import RunMismatchError, check_run_record, run_settings  # noqa: F401 (RunMismatchError: re-export)
from .writer import FORMATS, ImageWriter


@dataclass
class ImageSetSummary:
    written: int
    skipped: int
    seconds: float
    w_written: int = 0


def seed_filename(seed: int, fmt: str) -> str:
    return f"seed{seed:04d}.{fmt}"


def w_filename(seed: int) -> str:
    return f"seed{seed:04d}.w.safetensors"


def prepare_outdir(outdir: str | os.PathLike) -> Path:
    outdir = ensure_writable_dir(outdir)
    sweep_stale_temps(outdir)  # left by a run that was killed outright
    return outdir


def grid_image(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """[N <= rows*cols, H, W, C] -> one [rows*H, cols*W, C] image, row-major, black where empty."""
    n, h, w, c = images.shape
    assert n <= rows * cols
    canvas = np.zeros([rows * cols, h, w, c], np.uint8)
    canvas[:n] = images
    return canvas.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


@torch.no_grad()
def write_image_set(G, seeds: Sequence[int], outdir: str | os.PathLike, *, psi: float = 1.0,
                    truncation_cutoff: int | None = None, noise_mode: str = "const", class_idx: int | None = None,
                    batch_size: int = 8, fmt: str = "png", overwrite: bool = False, save_w: bool = False,
                    rank: int = 0, world_size: int = 1, provenance: Provenance | None = None,
                    progress: ProgressFn | None = None) -> ImageSetSummary:
    """Write one image per seed (this rank's share, seeds[rank::world_size]) into `outdir`.

    Streams batch by batch, so any number of seeds costs the memory of one batch; repeated seeds
    count once. Images already present are skipped unless `overwrite`; with `save_w`, missing w
    files (seedNNNN.w.safetensors) are filled in, by mapping only, also for images that exist.
    The folder records its settings (see manifest.py): other settings raise RunMismatchError
    before anything is written. `progress` gets a Progress('generate') after every batch: `done` seeds
    of this rank handled (written or already present), stats `written`; nothing is printed.
    Each image carries `provenance` (what the caller knows: the network's name, watermark, signer)
    with its seed and the settings filled in."""
    from ..io.latents import save_latents
    # Every argument is checked before the folder is touched.
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {fmt!r}: expected one of {sorted(FORMATS)}")
    check_batch_size(batch_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of range for world_size {world_size}")
    psi = check_psi(psi, truncation_cutoff, G.num_ws)
    check_noise_mode(noise_mode)
    class_labels(G.c_dim, 0, class_idx)
    seeds = parse_int_list(seeds)   # lazy ranges, repeats dropped: every count below is true
    check_seeds(seeds)
    outdir = prepare_outdir(outdir)
    settings = run_settings(G, psi, truncation_cutoff, noise_mode, class_idx, fmt)
    check_run_record(outdir, settings, overwrite, outputs=f"seed*.{fmt}")

    made = (provenance or Provenance()).with_(
        kind="synthetic", operation="generate", network=settings["network"], psi=psi,
        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode, class_idx=class_idx)
    mine = seeds[rank::world_size]
    start = time.perf_counter()
    written = skipped = w_written = done = 0
    on_cpu = next(G.parameters()).device.type == "cpu"
    with ImageWriter(mark_on_caller=on_cpu) as writer:
        for first in range(0, len(mine), batch_size):
            chunk = list(mine[first:first + batch_size])
            need_img = [s for s in chunk if overwrite or not (outdir / seed_filename(s, fmt)).exists()]
            need_w = [s for s in chunk if save_w and (overwrite or not (outdir / w_filename(s)).exists())]
            todo = sorted(set(need_img) | set(need_w), key=chunk.index)
            if todo:
                ws = map_seeds(G, todo, psi, truncation_cutoff, class_idx)
                row = {s: i for i, s in enumerate(todo)}
                for s in need_w:
                    save_latents(outdir / w_filename(s), ws[row[s]][None], space="w+",
                                 network_digest=settings["network"], psi=psi, source=f"seed {s}", overwrite=True)
                if need_img:
                    images = synthesize(G, ws[[row[s] for s in need_img]], noise_mode)
                    for s, img in zip(need_img, images):
                        writer.put(img, outdir / seed_filename(s, fmt), made.with_(seed=s), **FORMATS[fmt])
            written += len(need_img)
            w_written += len(need_w)
            skipped += len(chunk) - len(need_img)
            done += len(chunk)
            emit(progress, Progress("generate", done, len(mine), {"written": written},
                                    seconds=time.perf_counter() - start))
    return ImageSetSummary(written, skipped, time.perf_counter() - start, w_written)


def write_grids(seeds: Sequence[int], outdir: str | os.PathLike, grid: tuple[int, int], fmt: str = "png",
                overwrite: bool = False, provenance: Provenance | None = None) -> list[Path]:
    """Compose the per-seed images in `outdir` into grids of rows x cols consecutive seeds. A grid
    is rebuilt when it is missing or older than one of its images (its seed set grew, or they changed).
    Each grid carries `provenance` with the folder's recorded settings and its seeds."""
    from .manifest import read_run_record
    from PIL import Image
    from .writer import save_image
    outdir = Path(outdir)
    rows, cols = grid
    per = rows * cols
    seeds = parse_int_list(seeds)   # the same seed order, repeats dropped, as write_image_set's
    record = read_run_record(outdir) or {}
    made = (provenance or Provenance()).with_(
        kind="synthetic", operation="grid", network=record.get("network"), psi=record.get("psi"),
        truncation_cutoff=record.get("truncation_cutoff"), noise_mode=record.get("noise_mode"),
        class_idx=record.get("class_idx"))
    written = []
    for k in range(0, len(seeds), per):
        path = outdir / f"grid{k // per:04d}.{fmt}"
        files = [outdir / seed_filename(s, fmt) for s in seeds[k:k + per]]
        missing = [f.name for f in files if not f.exists()]
        if missing:
            raise ValueError(f"cannot compose {path.name}: {missing[0]} is missing from {outdir}")
        newest = max(f.stat().st_mtime_ns for f in files)
        if path.exists() and not overwrite and path.stat().st_mtime_ns >= newest:
            continue
        images = np.stack([np.asarray(Image.open(f)) for f in files])
        if images.ndim == 3:
            images = images[..., None]
        chunk = [int(s) for s in seeds[k:k + per]]
        save_image(grid_image(images, rows, cols), path, made.with_(details={"seeds": chunk}), **FORMATS[fmt])
        written.append(path)
    return written
