"""`stylegan dataset` throughput: photos/s with 1 worker against N worker processes, measured side by
side in one run (interleaved, best of `--repeats`), on photos made on the spot.

    python benchmarks/dataset.py                        # 300 JPEG photos 800x600 -> center-crop 256
    python benchmarks/dataset.py --photos 500 --size 1600x1200 --workers 1 2 4
    python benchmarks/dataset.py --align --photos 24    # FFHQ alignment (dlib), real face photos

With --align the photos are skimage's astronaut and matplotlib's Grace Hopper, each shifted, turned
and scaled differently (needs the `faces` extra, scikit-image and matplotlib)."""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from stylegan.data import make_dataset


def synthetic_photos(folder: Path, count: int, width: int, height: int) -> None:
    """Camera-like JPEGs: smooth colour fields with noise (JPEG cost depends on content), a quarter portrait."""
    rs = np.random.RandomState(0)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    for k in range(count):
        f = rs.uniform(0.002, 0.02, 6)
        a = np.stack([127 + 100 * np.sin(xx * f[c] + yy * f[c + 3] + k) for c in range(3)], 2)
        a += rs.normal(0, 8, a.shape).astype(np.float32)
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        if k % 4 == 3:
            img = img.transpose(Image.Transpose.ROTATE_90)
        img.save(folder / f"photo{k:04d}.jpg", quality=90)


def face_photos(folder: Path, count: int) -> None:
    import matplotlib
    from skimage import data
    hopper = Image.open(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg"))
    faces = [Image.fromarray(data.astronaut()), hopper.convert("RGB")]
    rs = np.random.RandomState(0)
    for k in range(count):
        img = faces[k % 2]
        canvas = Image.new("RGB", (800, 700), (128, 128, 128))
        turned = img.rotate(rs.uniform(-15, 15), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(128,) * 3)
        scale = rs.uniform(0.8, 1.2)
        turned = turned.resize((int(turned.width * scale), int(turned.height * scale)), Image.Resampling.LANCZOS)
        canvas.paste(turned, (int(rs.uniform(0, 800 - turned.width)) if turned.width < 800 else 0,
                              int(rs.uniform(0, 700 - turned.height)) if turned.height < 700 else 0))
        canvas.save(folder / f"face{k:04d}.jpg", quality=92)


def run(source: Path, workers: int, args) -> float:
    with tempfile.TemporaryDirectory() as out:
        kwargs = dict(align=True) if args.align else dict(transform="center-crop")
        start = time.perf_counter()
        summary = make_dataset(source, Path(out) / "d.zip", resolution=args.resolution, workers=workers, **kwargs)
        seconds = time.perf_counter() - start
    assert summary.images > 0
    return summary.source_files / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=None, help="default: 300, or 24 with --align")
    ap.add_argument("--size", default="800x600", help="synthetic photos' WxH")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--align", action="store_true")
    args = ap.parse_args()
    count = args.photos or (24 if args.align else 300)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "photos"
        source.mkdir()
        if args.align:
            face_photos(source, count)
        else:
            synthetic_photos(source, count, *map(int, args.size.lower().split("x")))
        best = {w: 0.0 for w in args.workers}
        # Interleaved, so that drift in the machine's load hits every setting alike.
        for _ in range(args.repeats):
            for w in args.workers:
                best[w] = max(best[w], run(source, w, args))
    what = f"align -> {args.resolution}" if args.align else f"{args.size} JPEG -> center-crop {args.resolution}"
    print(f"{count} photos, {what}, best of {args.repeats}")
    base = best[args.workers[0]]
    for w in args.workers:
        print(f"  {w} worker{'s' if w > 1 else ' '}: {best[w]:7.2f} photos/s   ratio {best[w] / base:5.2f}")


if __name__ == "__main__":
    main()
