"""Write an image set to a folder: one file per seed, resumable, shardable across processes.

Under torchrun every rank takes seeds[rank::world_size] and writes only its own files, so a
million-image set scales out without coordination; files already present are skipped, so an
interrupted run picks up where it stopped."""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .._errors import ParamError
from ..io.files import all_or_none, is_complete
from .._memory import check_held
from ..progress import Progress, ProgressFn, emit
from ..provenance import Provenance
from .checks import check_batch_size, check_noise_mode, check_psi
from .generate import map_seeds, synthesize
from ..seeds import check_seeds, class_labels, parse_int_list
from ..io.run_record import (RunMismatchError, check_run_record, prepare_outdir,  # noqa: F401 (re-exports)
                       run_settings)
from ..io.image_files import FORMATS, ImageWriter, save_image


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
                    rank: int = 0, world_size: int = 1, transform: np.ndarray | None = None,
                    provenance: Provenance | None = None, progress: ProgressFn | None = None) -> ImageSetSummary:
    """Write one image per seed (this rank's share, seeds[rank::world_size]) into `outdir`.

    Streams batch by batch, so any number of seeds costs the memory of one batch; repeated seeds
    count once. Images already present are skipped unless `overwrite`; with `save_w`, missing w
    files (seedNNNN.w.safetensors) are filled in, by mapping only, also for images that exist.
    The folder records its settings (see manifest.py): other settings raise RunMismatchError
    before anything is written. `progress` gets a Progress('generate') after every batch: `done` seeds
    of this rank handled (written or already present), stats `written`; nothing is printed.
    `transform` [3, 3]: StyleGAN3's input transform (`networks.stylegan3.pose_transform`).
    Each image carries `provenance` (what the caller knows: the network's name, watermark, signer)
    with its seed and the settings filled in."""
    from ..io.latents import save_latents
    # Every argument is checked before the folder is touched.
    if fmt not in FORMATS:
        raise ParamError(f"{{fmt}} {fmt!r} is not an image format: expected one of {sorted(FORMATS)}", "fmt")
    check_batch_size(batch_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of range for world_size {world_size}")
    psi = check_psi(psi, truncation_cutoff, G.num_ws)
    check_noise_mode(noise_mode)
    class_labels(G.c_dim, 0, class_idx)
    # A batch is rendered as float32 and kept as uint8 (activations come on top of that).
    check_held(5 * batch_size * G.img_resolution ** 2 * G.img_channels, f"a batch of {batch_size} images",
               "use a smaller {batch_size}", "batch_size")
    seeds = parse_int_list(seeds)   # lazy ranges, repeats dropped: every count below is true
    check_seeds(seeds)
    outdir = prepare_outdir(outdir)
    if transform is not None:
        from ..networks.stylegan3 import check_input_transform
        check_input_transform(G, transform)     # a StyleGAN2 says so before the folder is touched
    settings = run_settings(G, psi, truncation_cutoff, noise_mode, class_idx, fmt, transform)
    check_run_record(outdir, settings, overwrite, outputs=f"seed*.{fmt}")

    made = (provenance or Provenance()).with_(
        kind="synthetic", operation="generate", network=settings["network"], psi=psi,
        truncation_cutoff=truncation_cutoff, noise_mode=noise_mode, class_idx=class_idx,
        details={} if transform is None else {"transform": np.asarray(transform, np.float64).tolist()})
    mine = seeds[rank::world_size]
    start = time.perf_counter()
    written = skipped = w_written = done = 0
    on_cpu = next(G.parameters()).device.type == "cpu"
    with ImageWriter(mark_on_caller=on_cpu) as writer:
        for first in range(0, len(mine), batch_size):
            chunk = list(mine[first:first + batch_size])
            # What a crash outside the toolkit cut short is made again (is_complete reads its end).
            need_img = [s for s in chunk if overwrite or not is_complete(outdir / seed_filename(s, fmt))]
            need_w = [s for s in chunk if save_w and (overwrite or not is_complete(outdir / w_filename(s)))]
            todo = sorted(set(need_img) | set(need_w), key=chunk.index)
            if todo:
                ws = map_seeds(G, todo, psi, truncation_cutoff, class_idx)
                row = {s: i for i, s in enumerate(todo)}

                def save_w_file(s: int, w: torch.Tensor) -> Path:
                    return save_latents(outdir / w_filename(s), w, space="w+", network_digest=settings["network"],
                                        psi=psi, source=f"seed {s}", overwrite=True)
                for s in need_w:
                    if s not in need_img:
                        save_w_file(s, ws[row[s]][None])
                if need_img:
                    images = synthesize(G, ws[[row[s] for s in need_img]], noise_mode, transform)
                    for s, img in zip(need_img, images):
                        # Bound now: the job runs on a writer thread while the next batch is made.
                        w = functools.partial(save_w_file, s, ws[row[s]][None].clone()) if s in need_w else None
                        made_s = made.with_(seed=s)
                        img, premarked = writer.premark(img, made_s)
                        writer.submit(functools.partial(_save_seed, img, outdir / seed_filename(s, fmt), fmt,
                                                        made_s, premarked, w))
            written += len(need_img)
            w_written += len(need_w)
            skipped += len(chunk) - len(need_img)
            done += len(chunk)
            emit(progress, Progress("generate", done, len(mine), {"written": written},
                                    seconds=time.perf_counter() - start))
    return ImageSetSummary(written, skipped, time.perf_counter() - start, w_written)


def _save_seed(img: np.ndarray, path: Path, fmt: str, provenance: Provenance, premarked: bool,
               save_w: Callable[[], Path] | None) -> None:
    """A seed's image and (when asked for) its w file: both on disk, or neither."""
    with all_or_none() as group:
        if save_w is not None:
            group.add(save_w())
        save_image(img, path, provenance, premarked, **FORMATS[fmt])
        group.add(path)


def check_grid(G, grid: tuple[int, int]) -> None:
    """Refuse (one line) a grid too large to hold, before any image is made: a grid is one array,
    its images once more beside it."""
    rows, cols = grid
    check_held(2 * rows * cols * G.img_resolution ** 2 * G.img_channels,
               f"a {rows}x{cols} grid of {G.img_resolution} px images", "use a smaller grid")


def write_grids(seeds: Sequence[int], outdir: str | os.PathLike, grid: tuple[int, int], fmt: str = "png",
                overwrite: bool = False, provenance: Provenance | None = None) -> list[Path]:
    """Compose the per-seed images in `outdir` into grids of rows x cols consecutive seeds (see
    `check_grid` for the size). A grid is rebuilt when it is missing or older than one of its images
    (its seed set grew, or they changed). Each grid carries `provenance` with the folder's recorded
    settings and its seeds."""
    from ..io.run_record import read_run_record
    from PIL import Image
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
        missing = [f.name for f in files if not is_complete(f)]
        if missing:
            raise ValueError(f"cannot compose {path.name}: {missing[0]} is missing from {outdir}")
        newest = max(f.stat().st_mtime_ns for f in files)
        if is_complete(path) and not overwrite and path.stat().st_mtime_ns >= newest:
            continue
        images = np.stack([np.asarray(Image.open(f)) for f in files])
        if images.ndim == 3:
            images = images[..., None]
        chunk = [int(s) for s in seeds[k:k + per]]
        save_image(grid_image(images, rows, cols), path, made.with_(details={"seeds": chunk}), **FORMATS[fmt])
        written.append(path)
    return written
