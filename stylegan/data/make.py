"""Make a training data set: photos in, NVIDIA's dataset zip out.

The zip is laid out as NVIDIA's `dataset_tool.py` lays it out (uncompressed PNGs `00000/img00000000.png`
numbered in the source's order, `dataset.json` with the labels last), with the same crops and
resizes pixel for pixel, so NVIDIA's `train.py` reads it and it reads NVIDIA's. On top of that tool:
photos in any mode turned upright by their EXIF orientation, optional FFHQ alignment of every photo,
labels from a CSV, worker processes, a resumable write (see zipwriter.py), and no file silently
lost: unreadable files stop the run unless `skip_bad`, and every source file without an image in the
data set (no face, too small, unreadable) is listed in the report beside the zip.

Numbering follows the source: each source file takes the next number, or as many numbers as faces
it gave with `all_faces`; a file that gives no image leaves its number unused, as in NVIDIA's tool."""
from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
from PIL import Image

from .._errors import ParamError, exists_error, first_line
from ..io.files import atomic_output, ensure_writable_dir
from ..faces.photo import probe_photo, read_photo
from ..progress import Progress, ProgressFn, emit
from . import zipwriter
from .labels import LabelTable, match_labels, parse_dataset_json, read_labels
from .sources import ZIP_ERRORS, ImageSource
from .transforms import RESIZE_FILTERS, TRANSFORMS, apply_transform, drops

REPORT_SUFFIX = ".report.json"
# Outcomes of one source file.
OK, NO_FACE, TOO_SMALL, BAD = "ok", "no face", "too small", "unreadable"


@dataclass
class DatasetSummary:
    out: Path
    report: Path
    images: int                     # in the data set
    resolution: int
    channels: int
    source_files: int               # images found in the source (up to max_images)
    left_out: dict[str, str]        # source file -> why it gave no image
    origins: dict[str, str] = field(default_factory=dict)   # member of the zip -> the source file it came from
    label_dim: int = 0              # classes (or vector length); 0 when unlabelled
    class_names: list[str] = field(default_factory=list)
    resumed: int = 0                # source files an earlier, interrupted run had finished
    ignored: int = 0                # macOS metadata twins (__MACOSX/, ._name) left out
    other_files: int = 0            # files that are not images (by extension)
    seconds: float = 0.0
    left_out_kinds: dict[str, int] = field(default_factory=dict)   # 'no face' / 'too small' / 'unreadable' -> files


def archive_name(number: int) -> str:
    """NVIDIA's member name for image `number`: a folder per thousand."""
    return f"{number // 1000:05d}/img{number:08d}.png"


def encode_png(img: np.ndarray) -> bytes:
    """Uncompressed PNG, as NVIDIA's tool writes them (the training loop decodes them fastest)."""
    buf = io.BytesIO()
    Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(buf, format="png", compress_level=0,
                                                                      optimize=False)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# The work done per source file, in worker processes or in this one.

@dataclass(frozen=True)
class _Recipe:
    source: ImageSource
    width: int
    height: int
    transform: Optional[str]
    resize_filter: str
    channels: int
    align: bool
    all_faces: bool
    detector: Any                   # "hog" | "cnn" | a LandmarkDetector (picklable for worker processes)
    predictor_path: Optional[str]


@dataclass(frozen=True)
class _Outcome:
    status: str
    reason: Optional[str] = None
    pngs: tuple[bytes, ...] = ()


class _Worker:
    def __init__(self, recipe: _Recipe):
        self.recipe = recipe
        self._detector = None

    def probe(self, i: int):
        """(width, height, gray) of source file i from its header, or the reason it is unreadable."""
        src = self.recipe.source
        name = src.items[i].name
        try:
            with src.open(name, whole=False) as f:     # a header's worth: a zip member is not read twice
                h = probe_photo(f, src.describe(name))
            return h.width, h.height, h.gray
        except ValueError as e:
            return str(e)
        except ZIP_ERRORS as e:
            return f"{src.describe(name)}: corrupt zip member ({first_line(e)})"

    def process(self, i: int) -> _Outcome:
        r, src = self.recipe, self.recipe.source
        name = src.items[i].name
        try:
            with src.open(name) as f:
                photo = read_photo(f, src.describe(name), gray=r.channels == 1)
            if r.align:
                from ..faces import NoFaceError, align_face
                try:
                    images = [f.image for f in align_face(photo, self.detector(), size=r.width, all_faces=r.all_faces)]
                except NoFaceError:
                    return _Outcome(NO_FACE, "no face found")
            else:
                image = apply_transform(photo, r.transform, r.width, r.height, r.resize_filter)
                if image is None:
                    return _Outcome(TOO_SMALL, f"{photo.shape[1]}x{photo.shape[0]} is too small for "
                                               f"center-crop-wide to {r.width}x{r.height}")
                images = [image]
        except ValueError as e:
            return _Outcome(BAD, str(e))
        return _Outcome(OK, None, tuple(encode_png(im) for im in images))

    def detector(self):
        if self._detector is None:
            if isinstance(self.recipe.detector, str):
                from ..faces.landmarks import DlibLandmarks
                self._detector = DlibLandmarks(self.recipe.predictor_path, detector=self.recipe.detector)
            else:
                self._detector = self.recipe.detector
        return self._detector


_worker: Optional[_Worker] = None


def _init_worker(recipe: _Recipe, parent: int) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the main process's to handle
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    _worker = _Worker(recipe)


def _exit_with(parent: int) -> None:
    """A worker whose main process was killed outright (kill -9, OOM) would wait for work forever: it
    notices that it has been orphaned and ends too."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _probe(i: int):
    return _worker.probe(i)


def _process(i: int) -> _Outcome:
    return _worker.process(i)


@contextmanager
def _worker_deaths():
    try:
        yield
    except BrokenProcessPool:
        raise ValueError("a worker process died (out of memory?): rerun to continue, with fewer workers") from None


class _Pool:
    """Ordered, memory-bounded maps over source indices: in this process, or in worker processes."""

    def __init__(self, recipe: _Recipe, workers: int):
        self.local = _Worker(recipe) if workers <= 1 else None
        self.executor: Optional[Executor] = None
        self.workers = workers
        if workers > 1:
            # A forked worker would share this process's open zip, file offset included: each opens its own.
            recipe.source.close()
            # fork starts a worker in milliseconds and shares the listing; elsewhere spawn pickles the recipe.
            ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            self.executor = ProcessPoolExecutor(workers, ctx, initializer=_init_worker,
                                                initargs=(recipe, os.getpid()))

    def probe(self, indices: Sequence[int]) -> Iterator:
        if self.local is not None:
            yield from map(self.local.probe, indices)
            return
        with _worker_deaths():
            yield from self.executor.map(_probe, indices, chunksize=max(1, min(64, len(indices) // (8 * self.workers))))

    def process(self, indices: Iterable[int]) -> Iterator[_Outcome]:
        if self.local is not None:
            yield from map(self.local.process, indices)
            return
        todo = iter(indices)
        with _worker_deaths():
            window = deque(self.executor.submit(_process, i) for i in islice(todo, 4 * self.workers))
            while window:
                outcome = window.popleft().result()
                window.extend(self.executor.submit(_process, i) for i in islice(todo, 1))
                yield outcome

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "_Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------------------------
# The story.

Resolution = Union[int, tuple[int, int], None]


def make_dataset(source: str | os.PathLike, out: str | os.PathLike, *, resolution: Resolution = None,
                 transform: Optional[str] = None, resize_filter: str = "lanczos", align: bool = False,
                 all_faces: bool = False, detector: Any = "hog", labels: Union[str, os.PathLike, None, bool] = None,
                 rgb: bool = False, skip_bad: bool = False, max_images: Optional[int] = None,
                 workers: Optional[int] = None, overwrite: bool = False,
                 progress: Optional[ProgressFn] = None) -> DatasetSummary:
    """Write the data set of the images in `source` (a folder, searched recursively, or a zip) to `out` (.zip).

    `resolution`: the output side N, or (W, H) with H <= W for center-crop-wide; None keeps the
    images' own size (then all must share one square, power-of-two size). `transform`: None (resize
    only), 'center-crop' or 'center-crop-wide' (NVIDIA's). `align`: FFHQ-align every photo first (the
    largest face, or every face with `all_faces`; `detector` 'hog', 'cnn' or a LandmarkDetector).
    `labels`: None reads the source's own dataset.json when it has one, False makes an unlabelled
    set, a path reads a dataset.json or a `file,class` CSV. Grey photos make a one-channel set unless
    `rgb` or some photo has colour. `skip_bad` leaves unreadable files out (listed in the report)
    instead of stopping. `workers` processes decode and encode (default: the CPUs this process may use).

    An interrupted run (Ctrl-C, kill -9, a full disk) is continued by the same call; `overwrite`
    replaces an existing `out` and discards unfinished work. Raises ValueError (one line) for bad
    input, FileExistsError for an existing `out`. Progress events: stage 'scan' (headers read), then
    'dataset' (source files done; stats `images` and `left_out`)."""
    started = time.monotonic()
    out = Path(out)
    width, height = _check_arguments(out, resolution, transform, resize_filter, align, all_faces, max_images)
    workers = workers or _cpus()
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise exists_error(out)
    ensure_writable_dir(out.parent)
    if zipwriter.journal_path(out).exists() and not zipwriter.partial_path(out).exists():
        zipwriter.discard(out)     # a run that finished but died before removing its journal

    src = ImageSource(source)
    items = src.items[:max_images] if max_images is not None else src.items
    if not items:
        raise ValueError(f"{src.path}: no images found" + (f" ({src.other_files} other files)" if src.other_files else ""))
    table = _label_table(src, labels)
    label_list = match_labels(table, [it.name for it in src.items], str(src.path))[:len(items)] if table else None

    predictor_path = _landmark_model() if align and isinstance(detector, str) else None
    recipe = _Recipe(src, width, height, transform, resize_filter, 3, align, all_faces, detector, predictor_path)
    if not align:
        with _Pool(recipe, workers) as pool:
            width, height, channels = _scan(pool, src, len(items), width, height, transform, rgb, skip_bad, progress)
        recipe = _Recipe(src, width, height, transform, resize_filter, channels, False, False, None, None)
    settings = {"source": str(src.path.resolve()), "resolution": [width, height], "transform": transform,
                "resize_filter": resize_filter, "channels": recipe.channels, "align": align, "all_faces": all_faces,
                "detector": (detector if isinstance(detector, str) else type(detector).__name__) if align else None,
                "labels": _digest(label_list), "max_images": max_images}
    with _Pool(recipe, workers) as pool:
        summary = _write(pool, src, items, label_list, out, settings, skip_bad, overwrite, progress)
    summary.label_dim = _label_dim(label_list)
    summary.class_names = table.class_names if table else []
    summary.seconds = time.monotonic() - started
    _write_report(summary, src, settings)
    return summary


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _is_pow2(n: int) -> bool:
    return n >= 4 and n & (n - 1) == 0


def _check_arguments(out: Path, resolution: Resolution, transform, resize_filter, align, all_faces, max_images):
    """Every argument checked before anything is read: (width, height), (0, 0) for 'the images' own'."""
    if out.suffix.lower() != ".zip":
        raise ValueError(f"{out}: the data set is written as a .zip (NVIDIA's format); name it DATA.zip")
    if transform is not None and transform not in TRANSFORMS:
        raise ParamError(f"unknown {{transform}} {transform!r}: expected {' or '.join(TRANSFORMS)}", "transform")
    if resize_filter not in RESIZE_FILTERS:
        raise ParamError(f"unknown {{resize_filter}} {resize_filter!r}: expected {' or '.join(RESIZE_FILTERS)}",
                         "resize_filter")
    if all_faces and not align:
        raise ParamError("{all_faces=True} keeps every face found by alignment: pass {align=True} too",
                         "all_faces", "align")
    if align and transform is not None:
        raise ParamError("{align=True} makes square crops of the faces: it takes no {transform}", "align", "transform")
    if max_images is not None and max_images < 1:
        raise ParamError(f"{{max_images={max_images}}}: expected 1 or more", "max_images")
    if resolution is None:
        if transform is not None or align:
            raise ParamError(f"{'{align=True}' if align else f'{{transform={transform}}}'} needs {{resolution=N}}, "
                             f"the side of the data set's images (a power of two such as 256)",
                             "align" if align else "transform", "resolution")
        return 0, 0
    w, h = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if not _is_pow2(w):
        raise ParamError(f"{{resolution={w}}}: the networks need a power of two, 4 or more (such as 256)",
                         "resolution")
    if h != w and (transform != "center-crop-wide" or not 1 <= h < w):
        raise ParamError(f"{{resolution={w}x{h}}}: a WxH band (H < W) is for {{transform=center-crop-wide}}; "
                         f"data set images are square", "resolution", "transform")
    return w, h


def _label_table(src: ImageSource, labels) -> Optional[LabelTable]:
    if labels is False:
        return None
    if labels is None or labels is True:
        if not src.has_labels_file:
            if labels is True:
                raise ParamError(f"{src.path} has no dataset.json of labels: pass {{labels=FILE}}", "labels")
            return None
        return parse_dataset_json(src.read_text("dataset.json"), src.describe("dataset.json"))
    return read_labels(labels)


def _label_dim(label_list: Optional[list]) -> int:
    if not label_list:
        return 0
    return len(label_list[0]) if isinstance(label_list[0], list) else max(label_list) + 1


def _digest(obj) -> Optional[str]:
    return None if obj is None else hashlib.sha256(json.dumps(obj).encode()).hexdigest()


def _landmark_model() -> str:
    """The 68-point model's path, found (or downloaded) once, before any worker starts."""
    try:
        import dlib  # noqa: F401
        from ..faces.landmarks import model_path
        return model_path("landmarks-68")
    except ImportError:
        raise ValueError("align=True needs dlib: pip install 'stylegan[faces]'") from None
    except (OSError, RuntimeError) as e:
        raise ValueError(f"cannot load the landmark model: {e}") from None


def _scan(pool: _Pool, src: ImageSource, count: int, width: int, height: int, transform: Optional[str],
          rgb: bool, skip_bad: bool, progress: Optional[ProgressFn]) -> tuple[int, int, int]:
    """Read every header: refuse what cannot make one data set before any image is written, and
    settle the output's size and channel count."""
    started = time.monotonic()
    sizes: dict[tuple[int, int], list[str]] = {}
    bad: dict[str, str] = {}
    gray = True
    for i, probed in enumerate(pool.probe(range(count))):
        name = src.items[i].name
        if isinstance(probed, str):
            bad[name] = probed
        else:
            sizes.setdefault(probed[:2], []).append(name)
            gray = gray and probed[2]
        emit(progress, Progress("scan", i + 1, count, item=name, seconds=time.monotonic() - started))
    if bad and not skip_bad:
        names = "; ".join(list(bad.values())[:3]) + ("; ..." if len(bad) > 3 else "")
        raise ParamError(f"{len(bad)} unreadable image{'s' if len(bad) > 1 else ''} in {src.path}: {names} "
                         f"(remove or fix them, or pass {{skip_bad=True}} to leave them out)", "skip_bad")
    if not sizes:
        raise ValueError(f"{src.path}: none of its {count} images is readable")
    if transform is None:
        width, height = _plain_size(src, sizes, width)
    elif all(drops(w, h, transform, width, height) for w, h in sizes):
        raise ValueError(f"{src.path}: every image is narrower than {width} pixels or too short for a "
                         f"{width}x{height} band: no image is left for center-crop-wide")
    return width, height, 1 if gray and not rgb else 3


def _plain_size(src: ImageSource, sizes: dict[tuple[int, int], list[str]], side: int) -> tuple[int, int]:
    """Without a transform, images are only resized: they must share one square size."""
    if len(sizes) > 1:
        common = sorted(sizes.items(), key=lambda kv: -len(kv[1]))
        said = ", ".join(f"{len(names)} {'is' if len(names) == 1 else 'are'} {w}x{h} (e.g. {names[0]})"
                         for (w, h), names in common[:3])
        raise ParamError(f"{src.path}: images of {len(sizes)} sizes ({said}{', ...' if len(sizes) > 3 else ''}): "
                         f"pass {{transform=center-crop}} (or center-crop-wide) and {{resolution=N}} to crop them to "
                         f"one size", "transform", "resolution")
    (w, h), names = next(iter(sizes.items()))
    if w != h:
        raise ParamError(f"{src.path}: the images are {w}x{h}, not square: pass {{transform=center-crop}} "
                         f"(or center-crop-wide) and {{resolution=N}}", "transform", "resolution")
    if side == 0 and not _is_pow2(w):
        raise ParamError(f"{src.path}: the images are {w}x{h}, not a power of two: pass {{resolution=N}} to "
                         f"resize them (such as {1 << max(2, w.bit_length() - 1)}), or {{transform=center-crop}}",
                         "resolution", "transform")
    return (side, side) if side else (w, h)


def _write(pool: _Pool, src: ImageSource, items, label_list, out: Path, settings: dict, skip_bad: bool,
           overwrite: bool, progress: Optional[ProgressFn]) -> DatasetSummary:
    """Process the source files in order into the zip, resuming where an earlier run stopped."""
    writer = zipwriter.JournaledZip(out, settings, overwrite)
    try:
        resumed = len(writer.records)
        _check_resumed(writer.records, items, src, skip_bad)
        number = sum(max(1, len(r["entries"])) for r in writer.records)
        images = sum(len(r["entries"]) for r in writer.records)
        left_out = sum(r["status"] != OK for r in writer.records)
        started = time.monotonic()
        try:
            for i, outcome in zip(range(resumed, len(items)), pool.process(range(resumed, len(items)))):
                if outcome.status == BAD and not skip_bad:
                    raise ParamError(f"{outcome.reason} (remove or fix it, or pass {{skip_bad=True}} to leave "
                                     f"unreadable files out)", "skip_bad")
                entries = [(archive_name(number + k), png) for k, png in enumerate(outcome.pngs)]
                number += max(1, len(entries))
                images += len(entries)
                left_out += outcome.status != OK
                writer.add({"i": i, "name": items[i].name, "sig": items[i].signature, "status": outcome.status,
                            "reason": outcome.reason}, entries)
                emit(progress, Progress("dataset", i + 1, len(items), {"images": images, "left_out": left_out},
                                        item=items[i].name, seconds=time.monotonic() - started))
            if images == 0:
                why = Counter(r["status"] for r in writer.records)
                raise ValueError(f"{src.path}: no image for the data set: all {len(items)} files were left out "
                                 f"({', '.join(f'{n} {status}' for status, n in why.items())})")
            labels = None if label_list is None else \
                [[e[0], label_list[r["i"]]] for r in writer.records for e in r["entries"]]
            writer.finish([("dataset.json", json.dumps({"labels": labels}).encode())])
        except OSError as e:
            raise _disk_error(e, out, len(writer.records), len(items)) from None
    finally:
        writer.close()
    return DatasetSummary(
        out=out, report=report_path(out), images=images, resolution=settings["resolution"][0],
        channels=settings["channels"], source_files=len(items), resumed=resumed,
        left_out={r["name"]: r["reason"] for r in writer.records if r["status"] != OK},
        left_out_kinds=dict(Counter(r["status"] for r in writer.records if r["status"] != OK)),
        origins={e[0]: r["name"] for r in writer.records for e in r["entries"]},
        ignored=len(src.mac_metadata), other_files=src.other_files)


def _check_resumed(records: list[dict], items, src: ImageSource, skip_bad: bool) -> None:
    """The files an earlier run finished are still there, unchanged, in the same places."""
    for r in records:
        i = r["i"]
        if i >= len(items) or (items[i].name, items[i].signature) != (r["name"], r["sig"]):
            raise ParamError(f"{src.describe(r['name'])} changed since the unfinished run began: pass "
                             f"{{overwrite=True}} to start afresh", "overwrite")
        if r["status"] == BAD and not skip_bad:
            raise ParamError(f"{r['reason']} (the unfinished run left it out: pass {{skip_bad=True}} to continue it)",
                             "skip_bad")


def _disk_error(e: OSError, out: Path, done: int, total: int) -> ValueError:
    import errno
    why = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
    return ValueError(f"{out}: {why} after {done} of {total} files; the work so far is kept in "
                      f"{zipwriter.partial_path(out).name}: free space and rerun to continue")


def report_path(out: Path) -> Path:
    return out.with_name(out.name + REPORT_SUFFIX)


def _write_report(summary: DatasetSummary, src: ImageSource, settings: dict) -> None:
    """What a person checks afterwards: which source file became which image, what was left out and why."""
    report = {"out": str(summary.out), "source": str(src.path), "settings": settings, "images": summary.images,
              "source_files": summary.source_files, "left_out": summary.left_out,
              "ignored_macos_metadata": src.mac_metadata, "other_files": summary.other_files,
              "class_names": summary.class_names, "origins": summary.origins}
    with atomic_output(summary.report) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
