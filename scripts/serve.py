"""`stylegan serve`: the face explorer, a local web page over the library."""
from __future__ import annotations

import click

from .common import base_provenance, provenance_options, resolve_device


@click.command(epilog="""\b
Examples:
  stylegan serve --network ffhq
  stylegan serve --network ../shared/reference/sg2ada_skip.pkl --network ../shared/reference/sg3_t.pkl --open
  stylegan serve --network model.pkl --host 0.0.0.0 --port 8080     # reachable from other machines

\b
One page: generate (seed, truncation, noise, class, StyleGAN3 pose), style mixing, edits (SeFa,
GANSpace, registry and uploaded direction files; w, w+ and S), your own photo (align, project,
edit, paste back), and downloads of the image, the latent and the command that makes it.

\b
Every image the page shows or downloads says how it was made, as the command line's do (metadata
and the invisible watermark; `stylegan verify`); --sign signs the downloads.""")
@click.option("--network", "networks", multiple=True, required=True,
              help="Model file, URL or `stylegan models` name; repeat for several. The page offers only these.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address lets other machines in.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True, help="0: any free port.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@provenance_options
def serve(networks, host, port, device, open_browser, no_watermark, sign):
    """Explore faces in the browser: prints the URL and serves until Ctrl-C."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise click.ClickException('the server needs its extra: pip install "stylegan[serve]"') from None
    from stylegan.serve import bind, is_loopback, load_networks, serve as run, warm_up
    from .common import _announce_cpu_kernel, say_untrained
    dev = resolve_device(device)
    made = base_provenance(networks[0], no_watermark, sign)    # each network's own name goes in per image
    try:
        bind(host, port).close()       # a taken port says so before minutes of loading
        nets = load_networks(networks, dev, untrained=True)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    for net in nets:
        if net.untrained:
            say_untrained(net.source)
        _announce_cpu_kernel(net.G, dev)
    click.echo("warming up:", err=True)
    warm_up(nets, log=lambda line: click.echo(line, err=True))
    if not is_loopback(host):
        bar = "!" * 72
        click.echo(f"{bar}\n  WARNING: listening on {host}: anyone who can reach this machine can use the page,\n"
                   f"  upload files and run projections. Use --host 127.0.0.1 to keep it local.\n{bar}", err=True)
    else:
        click.echo(f"listening on {host} only: the page opens on this machine alone (--host to share it)", err=True)
    try:
        run(nets, host, port, open_browser, log=click.echo, provenance=made)   # the URL on stdout, for scripts to read
    except ValueError as e:
        raise click.ClickException(str(e)) from None
