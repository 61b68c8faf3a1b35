"""`stylegan dataset`: a folder or zip of photos -> a training data set in NVIDIA's zip format."""
from __future__ import annotations

import re
import sys

import click

from .common import FLAGS, ProgressPrinter, cli_error


class Resolution(click.ParamType):
    """'256' -> 256; '512x384' -> (512, 384) (a band for center-crop-wide)."""
    name = "N|WxH"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, tuple)):
            return value
        m = re.fullmatch(r"(\d+)(?:[x,](\d+))?", value.strip().lower())
        if m is None:
            self.fail(f"{value!r}: expected a side such as 256, or WxH such as 512x384", param, ctx)
        return int(m[1]) if m[2] is None else (int(m[1]), int(m[2]))


@click.command(epilog="""\b
Examples:
  stylegan dataset photos/ --out faces.zip --align --resolution 256
  stylegan dataset photos/ --out faces.zip --align --all-faces --resolution 1024 --skip-bad
  stylegan dataset pets/ --out pets.zip --transform center-crop --resolution 256 --labels classes.csv
  stylegan dataset lsun_cats/ --out cats.zip --transform center-crop-wide --resolution 512x384
  stylegan dataset ffhq.zip --out ffhq256.zip --resolution 256       # an NVIDIA data set, resized

\b
The zip holds uncompressed PNGs 00000/img00000000.png ... numbered in the source's order and
dataset.json with the labels: NVIDIA's layout, with the crops and resizes of NVIDIA's dataset_tool.py
pixel for pixel, so their train.py reads it. A CSV of labels has rows `file,class`: the file's path
inside SOURCE (or its bare name where unique) and a class number or name. DATA.zip.report.json lists
which source file became which image, and every file that was left out and why.""")
@click.argument("source", type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The data set to write: DATA.zip.")
@click.option("--resolution", type=Resolution(), default=None, metavar="N|WxH",
              help="Side of the images (a power of two), or WxH with --transform center-crop-wide. "
                   "Default: the images' own size (all must then share one square size).")
@click.option("--transform", type=click.Choice(["center-crop", "center-crop-wide"]), default=None,
              help="Crop photos of any size: the centred square, or a centred WxH band across the full "
                   "width on a black square (too-small photos are left out, and listed). Default: resize only.")
@click.option("--resize-filter", type=click.Choice(["lanczos", "box"]), default="lanczos", show_default=True)
@click.option("--align", is_flag=True, help="FFHQ-align each photo first (the crop FFHQ was made with); photos "
                                            "without a face are listed, not fatal.")
@click.option("--all-faces", is_flag=True, help="With --align: every face of a photo, not only the largest.")
@click.option("--detector", type=click.Choice(["hog", "cnn"]), default="hog", show_default=True,
              help="With --align: dlib's face detector, HOG (fast) or CNN (finds small and turned faces; slow).")
@click.option("--labels", default=None, metavar="FILE|none",
              help="Class labels: a dataset.json or a CSV of file,class rows; `none` for an unlabelled set. "
                   "Default: SOURCE's own dataset.json, if it has one.")
@click.option("--rgb", is_flag=True, help="Three channels even when every photo is grey.")
@click.option("--skip-bad", is_flag=True, help="Leave unreadable files out (listed in the report) instead of stopping.")
@click.option("--max-images", type=click.IntRange(min=1), default=None, help="Only the first N images of SOURCE.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes decoding and encoding images. Default: one per CPU.")
@click.option("--overwrite", is_flag=True, help="Replace DATA.zip if it exists, and discard an unfinished run's work.")
def dataset(source, out, resolution, transform, resize_filter, align, all_faces, detector, labels, rgb, skip_bad,
            max_images, workers, overwrite):
    """Make a training data set from the photos in SOURCE (a folder, searched recursively, or a zip).

    Photos in any mode and size are read upright (EXIF orientation). An interrupted run (Ctrl-C,
    kill, a full disk) continues where it stopped when the same command is run again."""
    from stylegan.data import make_dataset
    from stylegan.data.zipwriter import JournalMismatchError
    if labels is not None and labels.lower() == "none":
        labels = False
    display = ProgressPrinter(labels={"scan": "reading headers", "dataset": "images"})
    try:
        with display:
            summary = make_dataset(source, out, resolution=resolution, transform=transform, resize_filter=resize_filter,
                                   align=align, all_faces=all_faces, detector=detector, labels=labels, rgb=rgb,
                                   skip_bad=skip_bad, max_images=max_images, workers=workers, overwrite=overwrite,
                                   progress=display)
    except JournalMismatchError as e:
        said = ", ".join(f"{FLAGS.get(k, k)} {_show(then)}, not {_show(now)}" for k, (then, now) in e.differences.items())
        raise click.ClickException(f"{e.partial} is an unfinished run made with {said}: rerun with those "
                                   f"options to finish it, or pass --overwrite to start afresh") from None
    except (ValueError, FileExistsError) as e:
        raise cli_error(e) from None
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: rerun the same command to continue {out}", err=True)
        sys.exit(130)
    _print_summary(summary, source)


def _print_summary(s, source) -> None:
    mode = {1: "grey", 3: "RGB"}[s.channels]
    labels = f", {s.label_dim} classes" if s.class_names or s.label_dim else ""
    left = ""
    if s.left_out:
        left = "; left out: " + ", ".join(f"{n} {why}" for why, n in s.left_out_kinds.items())
    resumed = f", {s.resumed} of them done by the earlier run" if s.resumed else ""
    rate = (s.source_files - s.resumed) / s.seconds if s.seconds > 0 else 0.0
    click.echo(f"{s.out}: {s.images} images {s.resolution}x{s.resolution} {mode}{labels}, from {s.source_files} "
               f"files in {source}{resumed}{left} ({s.seconds:.1f} s, {rate:.1f} files/s)", err=True)
    for name, why in list(s.left_out.items())[:10]:
        click.echo(f"  left out {name}: {why}", err=True)
    if len(s.left_out) > 10:
        click.echo(f"  ... {len(s.left_out) - 10} more", err=True)
    extra = [f"{n} {what}" for n, what in ((s.ignored, "macOS metadata twins of images"),
                                           (s.other_files, "other files (not images)")) if n]
    if extra:
        click.echo(f"  ignored: {', '.join(extra)}", err=True)
    if s.class_names:
        click.echo("  classes: " + ", ".join(f"{k} {n}" for k, n in enumerate(s.class_names)), err=True)
    click.echo(f"  report: {s.report}", err=True)


def _show(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, list):
        return "x".join(map(str, v))
    if isinstance(v, str) and len(v) > 16:
        return f"(digest {v[:12]}...)"
    return str(v).lower() if isinstance(v, bool) else str(v)
