"""`stylegan convert`: any model file -> the toolkit's own format."""
from __future__ import annotations

import os
from pathlib import Path

import click

from .common import check_outdir, load_networks


@click.command(epilog="""\b
Examples:
  stylegan convert network-snapshot-025000.pkl model.stylegan
  stylegan convert stylegan2-ffhq-config-f.pkl ffhq.stylegan   # TF-era pickle
  stylegan convert 550000.pt model.stylegan                    # rosinality checkpoint
  stylegan convert stylegan3-t-ffhq-1024 sg3t-ffhq.stylegan    # model name: downloaded once

\b
The output holds tensors and a JSON header, no pickled code: it loads without NVIDIA's code and
without trusting the file. There is no NVIDIA-pickle output: that format embeds NVIDIA's source code.""")
@click.argument("source")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def convert(source, output, overwrite):
    """Read SOURCE (NVIDIA or TF pickle, rosinality .pt, stylegan file, URL or model name) and
    write its networks and metadata to OUTPUT in the toolkit's own format."""
    import stylegan
    from stylegan.io.files import WriteError
    out = Path(output)
    if out.exists() and Path(source).exists() and os.path.samefile(source, out):
        raise click.ClickException(f"{output}: is the input file: write the conversion elsewhere")
    if out.exists() and not overwrite:
        raise click.ClickException(f"{output} exists: pass --overwrite to replace it")
    check_outdir(out.parent)  # a bad destination stops us before a long load or a download
    nets = load_networks(source, generator=False)   # any set of networks converts
    try:
        stylegan.save(nets, out, overwrite=overwrite)
    except WriteError as e:
        raise click.ClickException(str(e)) from None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise click.ClickException(f"{output}: cannot write ({reason})") from None
    click.echo(f"wrote {output}: {', '.join(nets.keys())} from {source} ({nets.format})", err=True)
