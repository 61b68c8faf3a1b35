"""`stylegan info`: what a model file holds."""
from __future__ import annotations

import click

from .common import load_networks


@click.command(epilog="""\b
Examples:
  stylegan info network-snapshot-025000.pkl
  stylegan info ffhq""")
@click.argument("network")
def info(network):
    """Print the networks in NETWORK: kind, resolution, z/w/c dims, num_ws, parameters, style layers,
    the kernels they run, and the file's format."""
    from stylegan.loaders import FORMAT_NAMES
    nets = load_networks(network, generator=False)   # a discriminator alone is described too
    click.echo(f"{network}: {FORMAT_NAMES[nets.format]} ({nets.format})")
    for key in ("G_ema", "G", "D"):
        if key in nets:
            first, *rest = nets[key].describe().lines()
            click.echo(f"  {key:<6} {first}")
            for line in rest:
                click.echo(f"         {line}")
    tsk = nets.metadata.get("training_set_kwargs")
    if isinstance(tsk, dict) and tsk.get("path"):
        click.echo(f"  trained on {tsk['path']}")
