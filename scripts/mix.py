"""`stylegan mix`: the style-mixing grid."""
from __future__ import annotations

from pathlib import Path

import click

from .common import IntList, base_provenance, check_outdir, cli_error, load_generator, provenance_options, resolve_device


@click.command(epilog="""\b
Examples:
  stylegan mix --network ffhq --rows 85,100,75 --cols 55,821,1789 --styles 0-6 --trunc 0.7
  stylegan mix --network model.pkl --rows 1-3 --cols 4-6 --styles 8-17 --save-cells --outdir mix/""")
@click.option("--network", required=True, help="Model file, URL or model-zoo name (see `stylegan models`).")
@click.option("--rows", type=IntList(), required=True, help="Row seeds: the styles not listed in --styles.")
@click.option("--cols", type=IntList(), required=True, help="Column seeds: provide the layers in --styles.")
@click.option("--styles", type=IntList(), default="0-6", show_default=True,
              help="Layers taken from the column seed (0-3 coarse, 4-7 middle, 8+ fine at 1024 px).")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None, help="Class label (conditional networks).")
@click.option("--outdir", type=click.Path(file_okay=False), default="out", show_default=True)
@click.option("--save-cells", is_flag=True, help="Also write every cell as ROW-COL.png.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
@provenance_options
def mix(network, rows, cols, styles, psi, noise_mode, class_idx, outdir, save_cells, overwrite, device, no_watermark,
        sign):
    """Render a style-mixing grid: each cell is its row seed with the --styles layers of its column
    seed; source images run along the top and left. Writes grid.png in --outdir."""
    from stylegan.io.files import all_or_none, sweep_stale_temps
    from stylegan.pipelines.checks import check_psi
    from stylegan.pipelines.mixing import style_mix
    from stylegan.io.image_files import save_image
    from torch_utils.misc import network_digest
    outdir = Path(outdir)
    grid_path = outdir / "grid.png"
    cell_paths = {(r, c): outdir / f"{r}-{c}.png" for r in rows for c in cols} if save_cells else {}
    try:
        check_psi(psi)
    except ValueError as e:
        raise cli_error(e) from None
    check_outdir(outdir)       # before the model is loaded: a grid that cannot be saved is not rendered
    sweep_stale_temps(outdir)  # left by a run that was killed outright
    existing = [p for p in [grid_path, *cell_paths.values()] if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise click.ClickException(f"{existing[0]}{more} exists: pass --overwrite to replace it")
    made = base_provenance(network, no_watermark, sign)
    G = load_generator(network, resolve_device(device))
    try:
        result = style_mix(G, rows, cols, styles, psi=psi, noise_mode=noise_mode, class_idx=class_idx)
    except ValueError as e:
        raise cli_error(e) from None
    made = made.with_(operation="mix", network=network_digest(G), psi=psi, noise_mode=noise_mode,
                      class_idx=class_idx, details={"styles": [int(s) for s in styles]})
    try:
        with all_or_none() as group:   # the grid and its cells: all on disk, or none
            save_image(result.grid(), group.add(grid_path), made.with_(details={"rows": [int(r) for r in rows],
                                                                               "cols": [int(c) for c in cols]}))
            for (row, col), path in cell_paths.items():
                save_image(result.cells[(row, col)], group.add(path),
                           made.with_(details={"row": int(row), "col": int(col)}))
    except ValueError as e:
        raise cli_error(e) from None
    click.echo(f"wrote {grid_path}" + (f" and {len(cell_paths)} cells" if cell_paths else ""), err=True)
