"""Photos -> latents: project a folder of target images, in batches, resumable, shardable.

For target `NAME.png` the outputs are
    NAME.w.safetensors      the latent in the toolkit's latent format (space, network digest, source)
    NAME_projected_w.npz    the same w in the layout of NVIDIA's projector (key 'w', [1, num_ws, w_dim])
    NAME_proj.png           the generator's image at the latent
    NAME_compare.png        target | projection (| tuned) side by side
    NAME_pti.stylegan       with pivotal tuning: the tuned generator, the projection's noise in it
                            (NAME_pti.png its image; edit with --network NAME_pti.stylegan
                            --latent NAME.w.safetensors)
    NAME_progress.mp4       with video=True: target | projection every few steps, then target |
                            tuned generator with pivotal tuning, ending on the final image
and one row per target in `metrics.csv`. `NAME_compare.png` is written last, so its presence
means the target is done and a rerun skips it. The folder's run record (see manifest.py) keeps
the settings that decide the results, so a rerun with other settings stops instead of mixing two
sets of projections."""
from __future__ import annotations

import csv
import dataclasses
import math
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .._errors import without_prefix
from ..io.files import all_or_none, atomic_output, is_complete, name_fits, sweep_stale_temps
from ..faces.photo import MAX_PIXELS, read_photo
from ..images import check_uint8, resize
from ..inversion import pivotal_tuning, project_batch
from ..inversion.features import FeatureNet
from ..inversion.losses import DiscriminatorFeatures, Distance, FeatureDistance, Sum, as_distance, ssim
from ..inversion.project import shrink_for_features
from ..progress import Progress, ProgressFn
from ..provenance import Provenance, file_digest
from ..io.run_record import check_run_record
from ..io.video import video_writer
from ..io.image_files import save_image

TARGET_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
METRICS = ("target", "space", "steps", "psnr", "ssim", "lpips", "pti_steps", "pti_psnr", "pti_ssim", "pti_lpips",
           "identity")
# A progress video gets about this many frames, whatever the step count (a short clip at VIDEO_FPS).
VIDEO_FRAMES, VIDEO_FPS = 100, 25


@dataclass
class ProjectSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, ValueError] = field(default_factory=dict)   # target -> its one-line error
    notes: list[str] = field(default_factory=list)     # why an output looks unexpected, said once each


def find_targets(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        out += sorted(c for c in p.iterdir() if c.suffix.lower() in TARGET_SUFFIXES) if p.is_dir() else [p]
    return out


def prepare_target(image: np.ndarray, resolution: int) -> np.ndarray:
    """A square face crop [S, S, 3] uint8 -> the projection target [R, R, 3] uint8 at the generator's
    resolution (Lanczos when S != R). Every projection target goes through here: `project`'s files
    and `edit_photo`'s aligned crops alike. Other shapes are refused."""
    image = check_uint8(image, "image")
    h, w, _ = image.shape
    if h != w:
        raise ValueError(f"{w}x{h} is not square: crop the face first (`stylegan align`)")
    return resize(image, resolution)


def read_target(path: Path, resolution: int, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, int]:
    """A square image file as the projection target [R, R, 3] uint8, and the side it had in the file.
    An image past `max_pixels` is refused before it is decoded (faces/photo.py)."""
    img = read_photo(path, max_pixels=max_pixels)
    try:
        return prepare_target(img, resolution), img.shape[0]
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def latent_for_file(ws: torch.Tensor, space: str) -> torch.Tensor:
    """A projection's ws [num_ws, w_dim] as its latent file holds it: w [1, w_dim], w+ [1, num_ws, w_dim]."""
    return ws[:1] if space == "w" else ws[None]


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
                    world_size: int = 1, max_pixels: int = MAX_PIXELS, provenance: Provenance | None = None,
                    progress: ProgressFn | None = None) -> ProjectSummary:
    """Project every target into `outdir` (see the module doc for the files). A target that cannot
    be read is recorded in the summary and the others carry on; what came out differently from what
    one would expect (resized targets, blank identity) is said once each in `summary.notes`.

    `loss_name` names the loss `loss_factory` makes, for the run record: a folder made with other
    settings (network, space, num_steps, seed, loss_name, pti_steps) raises RunMismatchError
    unless `overwrite`. `video` writes each target's progress video from the frames the
    projection renders anyway (every `video_every(num_steps)` steps, then the final image; with
    pivotal tuning the tuning follows the same way). `progress` gets the Progress events of
    projection ('project', `item` the batch's names, `preview` its images side by side) and of
    tuning ('tune', `item` the target's name).
    Images carry `provenance` (what the caller knows) completed here: NAME_proj.png and NAME_pti.png
    are synthetic, NAME_compare.png and the video composites (the target photo beside them).

    A target's files appear together or not at all; a rerun redoes targets whose NAME_compare.png
    is missing or cut short. A target whose file names the file system cannot hold fails up front,
    so do images past `max_pixels` (before they are decoded); a disk that fills stops the run with a
    WriteError (one line)."""
    from torch_utils.misc import network_digest as digest_of
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    network_digest = network_digest or digest_of(G)
    check_run_record(outdir, projection_settings(network_digest, space, num_steps, seed, loss_name, pti_steps),
                     overwrite, outputs="*_compare.png")
    sweep_stale_temps(outdir)
    summary = ProjectSummary()
    todo: list[tuple[str, np.ndarray]] = []
    sizes: dict[int, int] = {}
    photos: dict[str, str] = {}
    for path in list(find_targets(targets))[rank::world_size]:
        name = path.stem
        if is_complete(outdir / f"{name}_compare.png") and not overwrite:
            summary.skipped.append(name)
            continue
        long = next((n for n in output_names(name, pti_steps, video) if not name_fits(outdir / n)), None)
        if long is not None:
            summary.failed[str(path)] = ValueError(f"output name {long} is too long for the file system")
            continue
        try:
            target, side = read_target(path, G.img_resolution, max_pixels)
            photos[name] = file_digest(path)
        except ValueError as e:
            summary.failed[str(path)] = without_prefix(e, f"{path}: ")
            continue
        todo.append((name, target))
        if side != G.img_resolution:
            sizes[side] = sizes.get(side, 0) + 1
    if sizes:
        said = ", ".join(f"{n} from {side} px" for side, n in sorted(sizes.items()))
        summary.notes.append(f"targets resized to the network's {G.img_resolution} px (Lanczos): {said}")

    # Ranks write their own table: no two processes rewrite one file.
    metrics = outdir / ("metrics.csv" if world_size == 1 else f"metrics.rank{rank}.csv")
    made = (provenance or Provenance()).with_(
        operation="project", network=network_digest, details={"space": space, "steps": int(num_steps)})
    run = _TargetRun(G, outdir, space, num_steps, seed, pti_steps, network_digest, identity, progress, metrics)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        with ExitStack() as videos:
            # One stack per target: its video is committed when its last frame is in, before its
            # compare image (its "done" mark) is written.
            stacks = [videos.enter_context(ExitStack()) for _ in chunk]
            appends = [stack.enter_context(video_writer(
                outdir / f"{name}_progress.mp4", VIDEO_FPS, provenance=made.with_(kind="composite", photo=photos[name])))
                       for stack, (name, _) in zip(stacks, chunk)] if video else [None] * len(chunk)
            loss = loss_factory()
            results = project_batch(G, np.stack([t for _, t in chunk]), loss, space=space, num_steps=num_steps,
                                    seed=seed, progress=_project_hook(progress, appends, chunk),
                                    preview_every=video_every(num_steps))
            for stack, append, (name, target), result in zip(stacks, appends, chunk, results):
                run.finish(name, target, result, loss_factory, perceptual_net(loss), append, stack.close,
                           made.with_(photo=photos[name]))
                summary.done.append(name)
    if run.blank_identity:
        summary.notes.append(f"identity is blank for {run.blank_identity} of {len(summary.done)} targets: dlib "
                             "found no face in the target or the result (a small or unusual image)")
    return summary


@dataclass
class _TargetRun:
    """The per-target half of project_targets: files, metrics and optional tuning after projection."""
    G: torch.nn.Module
    outdir: Path
    space: str
    num_steps: int
    seed: int
    pti_steps: int
    network_digest: str
    identity: Callable[[np.ndarray, np.ndarray], float | None] | None
    progress: ProgressFn | None
    metrics: Path
    blank_identity: int = 0

    def finish(self, name, target, result, loss_factory, lpips_net, append, close_video, made: Provenance) -> None:
        """One target's files, each added to one group as it lands: on any failure (a full disk,
        Ctrl-C) none of them stays, nor its metrics row. NAME_compare.png, the "done" mark, is last."""
        with all_or_none() as group:
            if append is not None:
                group.add(self.outdir / f"{name}_progress.mp4")
            self._write(name, target, result, loss_factory, lpips_net, append, close_video, made, group)

    def _write(self, name, target, result, loss_factory, lpips_net, append, close_video, made, group) -> None:
        from torch_utils.misc import network_digest as digest_of
        from ..io.latents import save_latents
        from ..loaders import save
        outdir, device = self.outdir, next(self.G.parameters()).device
        if append is not None:
            append(np.concatenate([target, result.image], axis=1))
        row = {"target": name, "space": self.space, "steps": self.num_steps, "psnr": psnr(result.image, target),
               "ssim": image_ssim(result.image, target)}
        if lpips_net is not None:
            row["lpips"] = feature_distance(lpips_net, target, result.image, device)
        panels, digests, tuned = [target, result.image], {}, None
        if self.pti_steps > 0:
            tuned = pivotal_tuning(self.G, target, result, loss_factory(), num_steps=self.pti_steps, seed=self.seed,
                                   progress=_tune_hook(self.progress, append, name, target),
                                   preview_every=video_every(self.pti_steps))
            if append is not None:
                append(np.concatenate([target, tuned.image], axis=1))
            row.update(pti_steps=len(tuned.dists), pti_psnr=psnr(tuned.image, target),
                       pti_ssim=image_ssim(tuned.image, target))
            if lpips_net is not None:
                row["pti_lpips"] = feature_distance(lpips_net, target, tuned.image, device)
            panels.append(tuned.image)
            # The latent drives the tuned copy too (its pivot): saying so lets an edit trust it there.
            digests = {"network_digests": [digest_of(tuned.G)]}
        latent = group.add(save_latents(outdir / f"{name}.w.safetensors", latent_for_file(result.ws, self.space).cpu(),
                                        space=self.space, network_digest=self.network_digest, source=name,
                                        extra=digests, overwrite=True))
        with atomic_output(group.add(outdir / f"{name}_projected_w.npz")) as tmp, open(tmp, "wb") as f:
            np.savez(f, w=result.ws[None].cpu().numpy())
        mine = made.with_(latent=file_digest(latent))
        save_image(result.image, group.add(outdir / f"{name}_proj.png"), mine.with_(kind="synthetic"))
        if tuned is not None:
            group.add(save({"G_ema": tuned.G}, outdir / f"{name}_pti.stylegan", overwrite=True))
            mine = mine.with_(operation="tune", details={"pti_steps": int(self.pti_steps)})
            save_image(tuned.image, group.add(outdir / f"{name}_pti.png"), mine.with_(kind="synthetic"))
        close_video()
        if self.identity is not None:
            row["identity"] = self.identity(target, panels[-1])
            self.blank_identity += row["identity"] is None
        group.on_failure(_append_metrics(self.metrics, row))
        # Last: its presence means the target is done. Target | projection (| tuned).
        save_image(np.concatenate(panels, axis=1), group.add(outdir / f"{name}_compare.png"),
                   mine.with_(kind="composite"))


def output_names(name: str, pti_steps: int = 0, video: bool = False) -> list[str]:
    """The files a target NAME makes (see the module doc)."""
    names = [f"{name}.w.safetensors", f"{name}_projected_w.npz", f"{name}_proj.png", f"{name}_compare.png"]
    names += [f"{name}_pti.stylegan", f"{name}_pti.png"] if pti_steps > 0 else []
    return names + ([f"{name}_progress.mp4"] if video else [])


def _project_hook(progress: ProgressFn | None, appends, chunk) -> ProgressFn | None:
    """Projection events -> the caller's (named, previews side by side) and a video frame per
    target (target | the step's image) whenever a preview comes."""
    if progress is None and not any(appends):
        return None
    names = ", ".join(name for name, _ in chunk)

    def hook(event: Progress) -> None:
        if event.preview is not None:
            for append, (_, target), image in zip(appends, chunk, event.preview):
                if append is not None:
                    append(np.concatenate([target, image], axis=1))
        if progress is not None:
            preview = None if event.preview is None else np.concatenate(list(event.preview), axis=1)
            progress(dataclasses.replace(event, item=names, preview=preview))
    return hook


def _tune_hook(progress: ProgressFn | None, append, name: str, target: np.ndarray) -> ProgressFn | None:
    """Tuning events -> the caller's (named) and video frames (target | the tuned image)."""
    if progress is None and append is None:
        return None

    def hook(event: Progress) -> None:
        if append is not None and event.preview is not None:
            append(np.concatenate([target, event.preview], axis=1))
        if progress is not None:
            progress(dataclasses.replace(event, item=name))
    return hook


def _append_metrics(path: Path, row: dict) -> Callable[[], None]:
    """Add or replace the target's row; the file is rewritten whole, atomically. Returns what takes
    the row out again (when the target's files fail to land)."""
    rows = []
    if path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("target") != row["target"]]
    _write_metrics(path, rows + [{k: _fmt(row.get(k)) for k in METRICS}])
    return lambda: _write_metrics(path, rows)


def _write_metrics(path: Path, rows: list[dict]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(v) -> str:
    if v is None:
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)     # 6 digits: an LPIPS near 0 keeps them
