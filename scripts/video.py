"""`stylegan video`: an interpolation video through a list of seeds."""
from __future__ import annotations

from pathlib import Path

import click

from .common import Grid, IntList, base_provenance, cli_error, load_generator, provenance_options, resolve_device


@click.command(epilog="""\b
Examples:
  stylegan video --network ffhq --seeds 0-7 --out walk.mp4
  stylegan video --network model.pkl --seeds 0-31 --grid 2x2 --space z --out walk.gif""")
@click.option("--network", required=True, help="Model file, URL or model-zoo name (see `stylegan models`).")
@click.option("--seeds", type=IntList(unique=False), required=True, help="Key seeds, visited in order.")
@click.option("--frames-per-seed", type=click.IntRange(min=1), default=60, show_default=True)
@click.option("--grid", type=Grid(), default=None, help="A ROWSxCOLS mosaic; cell k walks seeds[k::R*C].")
@click.option("--space", type=click.Choice(["z", "w"]), default="w", show_default=True,
              help="Interpolate in z (spherical) or w (linear).")
@click.option("--loop/--no-loop", default=True, show_default=True, help="Return to the first seed at the end.")
@click.option("--easing", type=click.Choice(["linear", "smooth"]), default="smooth", show_default=True)
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None, help="Class label (conditional networks).")
@click.option("--fps", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Output .mp4 or .gif.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
@provenance_options
def video(network, seeds, frames_per_seed, grid, space, loop, easing, psi, class_idx, fps, out, overwrite, device,
          no_watermark, sign):
    """Render a smooth latent walk through the seeds as an mp4 (bundled ffmpeg) or a gif."""
    from stylegan.pipelines.checks import check_psi
    from stylegan.pipelines.interpolate import grid_frames, interpolation_frames, num_frames
    from stylegan.io.video import check_video_memory, ensure_parent, write_video
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise click.ClickException(f"--out {out}: expected a .mp4 or .gif file name")
    if out.exists() and not overwrite:
        raise click.ClickException(f"{out} exists: pass --overwrite to replace it")
    try:
        check_psi(psi)
        ensure_parent(out)       # before any work: a render that cannot be saved is not started
    except ValueError as e:
        raise cli_error(e) from None
    made = base_provenance(network, no_watermark, sign)
    if sign:
        raise click.UsageError("--sign: C2PA manifests are made for PNG and JPEG images, not videos")
    G = load_generator(network, resolve_device(device))
    kw = dict(frames_per_seed=frames_per_seed, space=space, loop=loop, psi=psi, easing=easing, class_idx=class_idx)
    try:
        rows, cols = grid or (1, 1)
        check_video_memory(out, num_frames(len(seeds) // (rows * cols), frames_per_seed, loop),
                           (rows * G.img_resolution, cols * G.img_resolution, G.img_channels))
        frames = grid_frames(G, seeds, grid, **kw) if grid else interpolation_frames(G, seeds, **kw)
        from torch_utils.misc import network_digest
        made = made.with_(operation="video", network=network_digest(G), psi=psi, class_idx=class_idx,
                          details={"seeds": [int(s) for s in seeds], "space": space})
        n = write_video(frames, out, fps=fps, provenance=made)
    except ValueError as e:
        raise cli_error(e) from None
    click.echo(f"wrote {out} ({n} frames)", err=True)
