"""`stylegan info`: what a model file holds."""
from __future__ import annotations

import click

from .common import load_networks


def describe(net) -> str:
    """'StyleGAN3-T generator', 'StyleGAN2 generator (skip)', 'StyleGAN2 discriminator (resnet)'."""
    if net.arch == "stylegan3":
        return f"StyleGAN3-{'R' if net.synthesis.use_radial_filters else 'T'} generator"
    if net.arch == "stylegan2":
        return f"StyleGAN2 generator ({net.synthesis.architecture})"
    if net.arch == "stylegan2_discriminator":
        return f"StyleGAN2 discriminator ({net.architecture})"
    return net.arch


@click.command(epilog="""\b
Examples:
  stylegan info network-snapshot-025000.pkl
  stylegan info ffhq""")
@click.argument("network")
def info(network):
    """Print the networks in NETWORK: kind, resolution, z/w/c dims, num_ws, style layers, parameters, format."""
    from stylegan.loaders import FORMAT_NAMES
    from stylegan.networks.styles import style_layers
    from torch_utils.misc import num_params
    nets = load_networks(network, generator=False)   # a discriminator alone is described too
    click.echo(f"{network}: {FORMAT_NAMES[nets.format]} ({nets.format})")
    for key in ("G_ema", "G", "D"):
        if key not in nets:
            continue
        net = nets[key]
        dims = f"c_dim {net.c_dim}" if key == "D" else \
            f"z_dim {net.z_dim}, w_dim {net.w_dim}, c_dim {net.c_dim}, num_ws {net.num_ws}"
        click.echo(f"  {key:<6} {describe(net)}, {net.img_resolution}x{net.img_resolution}x{net.img_channels}, "
                   f"{dims}, {num_params(net):,} parameters")
        if key != "D":
            layers = style_layers(net)
            channels = sum(layer.channels for layer in layers)
            click.echo(f"         {len(layers)} style layers, {channels:,} style channels")
    tsk = nets.metadata.get("training_set_kwargs")
    if isinstance(tsk, dict) and tsk.get("path"):
        click.echo(f"  trained on {tsk['path']}")
