"""`stylegan project`: target images -> latents (W or W+), optionally with pivotal tuning."""
from __future__ import annotations

import sys

import click

from .common import (ProgressPrinter, base_provenance, load_networks, loss_factory_for, loss_file_first, loss_name,
                     max_pixels_option, provenance_options, resolve_device, trust_code_option)


@click.command(epilog="""\b
Examples:
  stylegan align me.jpg --outdir aligned/
  stylegan project --network ffhq --target aligned/me.png --outdir proj/
  stylegan project --network ffhq --target aligned/ --space w+ --pti --loss vgg16 --outdir proj/
  stylegan edit --network proj/me_pti.stylegan --latent proj/me.w.safetensors --edit smile.direction:-2..2

\b
--loss: 'auto' needs nothing downloaded (the file's discriminator features + MS-SSIM + pixels,
or pixels alone when the file has no discriminator); 'vgg16' is NVIDIA's projector network,
'lpips-vgg' the lpips package's layers over torchvision's VGG16 (both downloaded once); or the path
of those state dicts, or of vgg16.pt itself (recognised by its digest, read, not run). Any other
TorchScript file is code: it runs only with --trust-code.""")
@click.option("--network", required=True, help="Model file, URL or model-zoo name (see `stylegan models`).")
@click.option("--target", "targets", required=True, multiple=True, type=click.Path(),
              help="Square image(s) or folder(s) of them, e.g. from `stylegan align`. Repeatable.")
@click.option("--outdir", type=click.Path(file_okay=False), default="proj", show_default=True)
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True,
              help="One w for all layers (NVIDIA's projector), or one per layer (closer, less editable).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Optimisation steps.")
@click.option("--pti", is_flag=True, help="Then tune the generator to the target (pivotal tuning); saves it.")
@click.option("--pti-steps", type=click.IntRange(min=1), default=350, show_default=True,
              help="Most pivotal-tuning steps (a perceptual --loss stops at PTI's LPIPS 0.06).")
@click.option("--loss", default="auto", show_default=True,
              help="auto | vgg16 | lpips-vgg | PATH of vgg16.pt or of an LPIPS/VGG16 state dict.")
@trust_code_option
@click.option("--batch", "batch_size", type=click.IntRange(min=1), default=None,
              help="Targets optimised together [default: 1 on a CPU, where one at a time is faster "
                   "(benchmarks/projection.py), 8 on a GPU].")
@click.option("--seed", type=click.IntRange(min=0), default=303, show_default=True)
@click.option("--identity/--no-identity", default=True, show_default=True,
              help="Report dlib's face-identity distance target vs result (when dlib and a face are there).")
@click.option("--video", is_flag=True, help="Also write NAME_progress.mp4: target | projection as it converges.")
@click.option("--overwrite", is_flag=True, help="Redo targets already projected (default: skip them).")
@max_pixels_option
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
@provenance_options
def project(network, targets, outdir, space, steps, pti, pti_steps, loss, trust_code, batch_size, seed, identity,
            video, overwrite, max_pixels, device, no_watermark, sign):
    """Find the latent that makes the generator draw each target image. Writes, per target NAME:
    NAME.w.safetensors, NAME_projected_w.npz (NVIDIA's layout), NAME_proj.png, NAME_compare.png,
    with --pti NAME_pti.stylegan, with --video NAME_progress.mp4; and metrics.csv (PSNR, SSIM, LPIPS
    with a perceptual --loss, identity). Resumable; the folder remembers the settings that made it, and
    a rerun with other settings stops (--overwrite starts it afresh)."""
    from stylegan.distributed import rank_and_world
    from stylegan.io.run_record import RunMismatchError
    from stylegan.pipelines.project import find_targets, project_targets
    from torch_utils.misc import network_digest
    from .common import check_outdir, cli_error, run_mismatch_error
    found = find_targets(targets)
    if not found:
        raise click.ClickException("no target images found in the given folders")
    made = base_provenance(network, no_watermark, sign)
    dev = resolve_device(device)
    # A loss file is read (and refused) before anything is written or downloaded.
    feature_net = loss_file_first(loss, dev, trust_code)
    check_outdir(outdir)
    batch_size = batch_size or (1 if dev.type == "cpu" else 8)
    nets = load_networks(network, dev)
    G = nets.generator
    loss_factory = loss_factory_for(loss, nets, dev, trust_code, feature_net)
    ident = _identity() if identity else None
    if identity and ident is None:
        click.echo("the identity column stays blank: dlib's face-recognition model is not installed "
                   "(pip install 'stylegan[faces]')", err=True)
    rank, world = rank_and_world()
    printer = ProgressPrinter()
    try:
        summary = project_targets(G, found, outdir, loss_factory, space=space, num_steps=steps,
                                  batch_size=batch_size, seed=seed, pti_steps=pti_steps if pti else 0,
                                  network_digest=network_digest(G), identity=ident, loss_name=loss_name(loss),
                                  video=video, overwrite=overwrite, rank=rank, world_size=world,
                                  max_pixels=max_pixels, provenance=made, progress=printer)
    except RunMismatchError as e:
        raise run_mismatch_error(e, outdir) from None
    except ValueError as e:
        raise cli_error(e) from None
    finally:
        printer.close()
    for target, reason in summary.failed.items():
        click.echo(f"{target}: {cli_error(reason).message}", err=True)
    for note in summary.notes:
        click.echo(note, err=True)
    click.echo(f"{len(summary.done)} targets projected, {len(summary.skipped)} already done, "
               f"{len(summary.failed)} failed, to {outdir}", err=True)
    if pti and summary.done:
        name = summary.done[0]
        click.echo(f"edit a tuned result with its own generator: stylegan edit --network {outdir}/{name}_pti.stylegan "
                   f"--latent {outdir}/{name}.w.safetensors --edit ...", err=True)
    if summary.failed:
        sys.exit(1)


def _identity():
    try:
        from stylegan.faces.identity import FaceIdentity
        ident = FaceIdentity()
    except (ImportError, ValueError, RuntimeError):
        return None
    return ident.distance
