"""`stylegan generate`: seeds -> one image file per seed."""
from __future__ import annotations

import click

from .common import Grid, IntList, cli_error, load_generator, resolve_device


@click.command(epilog="""\b
Examples:
  stylegan generate --network ffhq --seeds 0-99 --trunc 0.7 --outdir out/
  stylegan generate --network model.pkl --seeds 0-15 --grid 4x4 --outdir out/
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
@click.option("--save-w", is_flag=True, help="Also write each seed's w as seedNNNN.w.npy, for editing later.")
@click.option("--overwrite", is_flag=True, help="Regenerate images that already exist (default: skip them).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
def generate(network, seeds, psi, trunc_cutoff, noise_mode, class_idx, outdir, batch_size, fmt, grid, save_w,
             overwrite, device):
    """Generate one image per seed, named seedNNNN.png; seed N gives NVIDIA's image for seed N.

    Existing images are skipped, so an interrupted run resumes where it stopped. Under torchrun,
    each rank writes its own share of the seeds."""
    from stylegan.pipelines.image_set import barrier, dist_rank, write_grids, write_image_set
    G = load_generator(network, resolve_device(device))
    rank, world = dist_rank()
    try:
        summary = write_image_set(G, seeds, outdir, psi=psi, truncation_cutoff=trunc_cutoff, noise_mode=noise_mode,
                                  class_idx=class_idx, batch_size=batch_size, fmt=fmt, overwrite=overwrite,
                                  save_w=save_w, rank=rank, world_size=world)
        barrier()
        if grid is not None and rank == 0:
            write_grids(seeds, outdir, grid, fmt, overwrite)
    except ValueError as e:
        raise cli_error(e) from None
    rate = summary.written / summary.seconds if summary.seconds > 0 else 0.0
    click.echo(f"{summary.written} images written, {summary.skipped} already present, to {outdir} ({rate:.2f} img/s)",
               err=True)
