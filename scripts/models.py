"""`stylegan models`: list the registry (GANs and the assets projection and editing use), and
optionally pre-download entries into the cache."""
from __future__ import annotations

import click

from stylegan.hub import KINDS


@click.command(epilog="""\b
Examples:
  stylegan models
  stylegan models --kind gan
  stylegan models --kind direction
  stylegan models --fetch ffhq --fetch stylegan3-r-afhqv2-512
  STYLEGAN_CACHE=/data/models stylegan models --cached""")
@click.option("--kind", type=click.Choice(KINDS), default=None, help="List only entries of this kind.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Cache folder (default: $STYLEGAN_CACHE, else ~/.cache/stylegan).")
@click.option("--cached", "only_cached", is_flag=True, help="List only entries already on this machine.")
@click.option("--fetch", "fetch", multiple=True, metavar="NAME",
              help="Download NAME into the cache now (repeatable); handy before a multi-process run.")
@click.option("--quiet", "-q", is_flag=True, help="No download progress.")
def models(kind, cache_dir, only_cached, fetch, quiet):
    """List what --network (GANs) and the face, projection and editing tools accept by name: name,
    kind, alias, resolution, format, where it is (cached, packaged or not yet), licence. Every NVIDIA
    network is for non-commercial use only, and so is dlib's 68-point landmark model (its training
    data, iBUG 300-W, exclude commercial use)."""
    from stylegan import hub
    from .common import ProgressPrinter
    with ProgressPrinter() as printer:      # leaving it ends a bar cut short by an error, before the error
        for name in fetch:
            try:
                path = hub.fetch(hub.lookup(name), cache_dir, progress=False if quiet else printer)
            except ValueError as e:
                raise click.ClickException(str(e)) from None
            click.echo(f"{name}: {path}", err=True)
    rows = [_row(entry, hub.where(entry, cache_dir) or "-") for entry in hub.entries(kind)]
    rows = [r for r in rows if r[5] != "-" or not only_cached]
    header = ("NAME", "KIND", "ALIAS", "RES", "FORMAT", "LOCAL", "LICENCE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


def _row(entry, where: str) -> tuple[str, ...]:
    return (entry.name, entry.kind, ",".join(entry.aliases) or "-", str(entry.resolution or "-"),
            entry.format or "-", where, entry.licence)
