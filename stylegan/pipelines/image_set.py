"""Write an image set to a folder: one file per seed, resumable, shardable across processes.

Under torchrun every rank takes seeds[rank::world_size] and writes only its own files, so a
million-image set scales out without coordination; files already present are skipped, so an
interrupted run picks up where it stopped."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .._files import atomic_output, ensure_writable_dir, sweep_stale_temps
from .checks import check_psi
from .generate import map_seeds, synthesize
from .latents import class_labels
from .writer import FORMATS, ImageWriter


@dataclass
class ImageSetSummary:
    written: int
    skipped: int
    seconds: float
    w_written: int = 0


@dataclass
class Progress:
    done: int            # seeds of this rank handled so far (written or already present)
    total: int           # seeds of this rank
    written: int
    seconds: float


RUN_RECORD = ".stylegan-run.json"


class RunMismatchError(ValueError):
    """The output folder was made with other settings; `differences` maps a setting to (then, now)."""

    def __init__(self, outdir: Path, differences: dict[str, tuple]):
        self.outdir, self.differences = outdir, differences
        said = ", ".join(f"{k} {_show(then)}, not {_show(now)}" for k, (then, now) in differences.items())
        super().__init__(f"{outdir} was made with {said}: use another output folder or overwrite")


def _show(v) -> str:
    return f"{v[:12]}..." if isinstance(v, str) and len(v) > 16 else repr(v) if isinstance(v, str) else str(v)


def run_settings(G, psi, truncation_cutoff, noise_mode, class_idx, fmt) -> dict:
    """What decides the pixels of a folder's images: recorded in it, compared on every rerun."""
    from torch_utils.misc import network_digest
    return {"network": network_digest(G), "psi": float(psi), "truncation_cutoff": truncation_cutoff,
            "noise_mode": noise_mode, "class_idx": class_idx, "format": fmt}


def check_run_record(outdir: Path, settings: dict, overwrite: bool, write: bool = True) -> None:
    """Stop a rerun that would mix two sets of images; write the record for a new or overwritten
    folder (only when `write`: under torchrun every rank checks, rank 0 writes)."""
    import json
    from .. import __version__
    path = outdir / RUN_RECORD
    if path.exists() and not overwrite:
        try:
            then = json.loads(path.read_text())
        except (OSError, ValueError):
            raise ValueError(f"{path}: unreadable run record: overwrite to start the folder afresh") from None
        diff = {k: (then.get(k), v) for k, v in settings.items() if then.get(k) != v}
        if diff:
            raise RunMismatchError(outdir, diff)
        return
    if not write:
        return
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps({**settings, "stylegan_version": __version__}, indent=1))


def seed_filename(seed: int, fmt: str) -> str:
    return f"seed{seed:04d}.{fmt}"


def w_filename(seed: int) -> str:
    return f"seed{seed:04d}.w.safetensors"


def dist_rank() -> tuple[int, int]:
    """(rank, world_size) from torchrun's environment; (0, 1) when launched plainly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


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
                    rank: int = 0, world_size: int = 1,
                    progress: Callable[[Progress], None] | None = None) -> ImageSetSummary:
    """Write one image per seed (this rank's share) into `outdir`, streaming: any number of seeds.

    Images already present are skipped, unless `overwrite`; with `save_w`, missing w files are
    filled in (mapping only) also for images that exist. The folder records its settings; a run
    with other settings raises RunMismatchError instead of mixing two sets."""
    from ..io.latents import save_latents
    from torch_utils.misc import network_digest
    if fmt not in FORMATS:
        raise ValueError(f"unknown image format {fmt!r}: expected one of {sorted(FORMATS)}")
    psi = check_psi(psi, truncation_cutoff, G.num_ws)
    class_labels(G.c_dim, 0, class_idx)  # validate before any work
    outdir = prepare_outdir(outdir)
    settings = run_settings(G, psi, truncation_cutoff, noise_mode, class_idx, fmt)
    check_run_record(outdir, settings, overwrite, write=rank == 0)
    mine = seeds[rank::world_size]
    start = time.perf_counter()
    written = skipped = w_written = done = 0
    with ImageWriter() as writer:
        for first in range(0, len(mine), batch_size):
            chunk = list(mine[first:first + batch_size])
            need_img = [s for s in chunk if overwrite or not (outdir / seed_filename(s, fmt)).exists()]
            need_w = [s for s in chunk if save_w and (overwrite or not (outdir / w_filename(s)).exists())]
            todo = [s for s in chunk if s in set(need_img) | set(need_w)]
            if todo:
                ws = map_seeds(G, todo, psi, truncation_cutoff, class_idx)
                rows = {s: i for i, s in enumerate(todo)}
                for s in need_w:
                    save_latents(outdir / w_filename(s), ws[rows[s]][None].cpu(), space="w+",
                                 network_digest=settings["network"], psi=psi, source=f"seed {s}", overwrite=True)
                if need_img:
                    images = synthesize(G, ws[[rows[s] for s in need_img]], noise_mode)
                    for s, img in zip(need_img, images):
                        writer.put(img, outdir / seed_filename(s, fmt), **FORMATS[fmt])
            written += len(need_img)
            w_written += len(need_w)
            skipped += len(chunk) - len(need_img)
            done += len(chunk)
            if progress is not None:
                progress(Progress(done, len(mine), written, time.perf_counter() - start))
    return ImageSetSummary(written, skipped, time.perf_counter() - start, w_written)


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
    """Compose the per-seed images in `outdir` into grids of rows x cols consecutive seeds. A grid
    is rebuilt when it is missing or older than one of its images (its seed set grew, or they changed)."""
    from PIL import Image
    from .writer import save_image
    outdir = Path(outdir)
    rows, cols = grid
    per = rows * cols
    written = []
    for k in range(0, len(seeds), per):
        path = outdir / f"grid{k // per:04d}.{fmt}"
        files = [outdir / seed_filename(s, fmt) for s in seeds[k:k + per]]
        newest = max(f.stat().st_mtime_ns for f in files)
        if path.exists() and not overwrite and path.stat().st_mtime_ns >= newest:
            continue
        images = np.stack([np.asarray(Image.open(f)) for f in files])
        if images.ndim == 3:
            images = images[..., None]
        save_image(grid_image(images, rows, cols), path, **FORMATS[fmt])
        written.append(path)
    return written
