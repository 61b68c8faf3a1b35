"""`stylegan models`: list the model zoo, and optionally pre-download entries into the cache."""
from __future__ import annotations

import click


@click.command(epilog="""\b
Examples:
  stylegan models
  stylegan models --fetch ffhq --fetch stylegan3-r-afhqv2-512
  STYLEGAN_CACHE=/data/models stylegan models --cached""")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Cache folder (default: $STYLEGAN_CACHE, else ~/.cache/stylegan).")
@click.option("--cached", "only_cached", is_flag=True, help="List only models already downloaded.")
@click.option("--fetch", "fetch", multiple=True, metavar="NAME",
              help="Download NAME into the cache now (repeatable); handy before a multi-process run.")
@click.option("--quiet", "-q", is_flag=True, help="No download progress bar.")
def models(cache_dir, only_cached, fetch, quiet):
    """List the pretrained models that --network accepts by name: name, alias, resolution,
    format, cached or not, licence. All are NVIDIA's and for non-commercial use only."""
    from stylegan import hub, model_zoo
    for name in fetch:
        try:
            path = hub.resolve(model_zoo.get_model(name).name, cache_dir=cache_dir, progress=not quiet)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"{name}: {path}", err=True)
    rows = [_row(entry, hub.cached(entry.name, cache_dir) is not None) for entry in model_zoo.MODELS]
    rows = [r for r in rows if r[4] == "cached" or not only_cached]
    header = ("NAME", "ALIAS", "RES", "FORMAT", "CACHED", "LICENCE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])


def _row(entry, is_cached: bool) -> tuple[str, ...]:
    return (entry.name, ",".join(entry.aliases) or "-", str(entry.resolution), entry.format,
            "cached" if is_cached else "-", entry.licence)
