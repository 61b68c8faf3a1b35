"""`stylegan generate`: seeds -> one image file per seed."""
from __future__ import annotations

import click

from .common import (Grid, IntList, ProgressPrinter, base_provenance, check_outdir, cli_error, load_generator,
                     pose, pose_options, provenance_options, resolve_device, run_mismatch_error)


@click.command(epilog="""\b
Examples:
  stylegan generate --network ffhq --seeds 0-99 --trunc 0.7 --outdir out/
  stylegan generate --network model.pkl --seeds 0-15 --grid 4x4 --outdir out/
  stylegan generate --network stylegan3-t-ffhqu-256 --seeds 0-7 --translate 0.2,0 --rotate 10
  torchrun --nproc-per-node 8 -m scripts.cli generate --network ffhq --seeds 0-999999 --outdir big/""")
@click.option("--network", "network", required=True, help="Model file, URL or model-zoo name (see `stylegan models`).")
@click.option("--seeds", type=IntList(), required=True, help="Seeds, e.g. 0-99,200,300-310.")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--trunc-cutoff", type=click.IntRange(min=0), default=None, help="Truncate only the first K layers.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None, help="Class label (conditional networks).")
@click.option("--outdir", type=click.Path(file_okay=False), default="out", show_default=True)
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True)
@click.option("--grid", type=Grid(), default=None, help="Also write grids of ROWSxCOLS consecutive seeds.")
@click.option("--save-w", is_flag=True, help="Also write each seed's w as seedNNNN.w.safetensors, for editing later.")
@click.option("--overwrite", is_flag=True, help="Regenerate images that already exist (default: skip them).")
@pose_options
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
@provenance_options
def generate(network, seeds, psi, trunc_cutoff, noise_mode, class_idx, outdir, batch_size, fmt, grid, save_w,
             overwrite, translate, rotate, device, no_watermark, sign):
    """Generate one image per seed, named seedNNNN.png; seed N gives NVIDIA's image for seed N
    (pixel for pixel with --no-watermark: at 256 px and more the watermark moves pixels a few levels).

    Existing images are skipped, so an interrupted run resumes where it stopped; the folder
    remembers the settings that made it, and a rerun with other settings stops instead of mixing
    two sets (--overwrite starts it afresh). Under torchrun, each rank writes its own share.
    Every image says it is synthetic (metadata and an invisible watermark; `stylegan verify`)."""
    from stylegan.distributed import barrier, rank_and_world
    from stylegan.pipelines.image_set import check_grid, write_grids, write_image_set
    from stylegan.io.run_record import RunMismatchError
    check_outdir(outdir)
    made = base_provenance(network, no_watermark, sign)
    G = load_generator(network, resolve_device(device))
    if grid is not None:
        try:
            check_grid(G, grid)
        except ValueError as e:
            raise cli_error(e) from None
    rank, world = rank_and_world()
    tag = f"[rank {rank}/{world}] " if world > 1 else ""
    try:
        # The bar appears with the first finished batch: a run refused up front prints one line only.
        with ProgressPrinter(labels={"generate": f"{tag}images"}) as printer:
            summary = write_image_set(G, seeds, outdir, psi=psi, truncation_cutoff=trunc_cutoff,
                                      noise_mode=noise_mode, class_idx=class_idx, batch_size=batch_size, fmt=fmt,
                                      overwrite=overwrite, save_w=save_w, rank=rank, world_size=world,
                                      transform=pose(translate, rotate), provenance=made, progress=printer)
        barrier()
        if grid is not None and rank == 0:
            write_grids(seeds, outdir, grid, fmt, overwrite, provenance=made)
    except RunMismatchError as e:
        raise run_mismatch_error(e, outdir) from None
    except ValueError as e:
        raise cli_error(e) from None
    rate = summary.written / summary.seconds if summary.seconds > 0 else 0.0
    extra = f", {summary.w_written} w files" if save_w else ""
    click.echo(f"{tag}{summary.written} images written, {summary.skipped} already present{extra}, to {outdir} "
               f"({rate:.2f} img/s)", err=True)
