"""`stylegan edit`: move latents (seeds, saved latents or a photo) along directions and render the results."""
from __future__ import annotations

from pathlib import Path

import click

from .common import (IntList, base_provenance, cli_error, load_networks, max_pixels_option, pose, pose_options,
                     provenance_options, resolve_device, run_mismatch_error, trust_code_option)


@click.command(epilog="""\b
Examples:
  stylegan edit --network ffhq --seeds 0-3 --edit sefa:2@0-3:-5..5 --outdir edits/
  stylegan edit --network ffhq --latent proj/me.w.safetensors --edit smile.npy:-3..3 --grid
  stylegan edit --network ffhq --photo me.jpg --edit smile.direction:-2,2 --paste-back --outdir edits/
  stylegan edit --network ffhq --photo me.jpg --pti --loss vgg16 --edit age.direction:-3..3 --values 5

\b
--edit SOURCE[:K][@ROWS]:STRENGTHS, repeatable. SOURCE: a direction file (ours, InterFaceGAN .npy,
GANSpace .npz, e4e/PTI .pt, rosinality factor.pt), a registry direction (`stylegan models --kind
direction`, e.g. interfacegan-ffhq-smile, downloaded once) or 'sefa' / 'ganspace' computed on the spot;
K the component; ROWS the ws rows to move (e.g. 0-3: coarse); STRENGTHS 3, -2,0,2 or -3..3 (--values
strengths spread over the range). --together applies every --edit at once, one strength each.

\b
--photo is aligned and projected exactly as `stylegan align` + `stylegan project` do (--space,
--steps, --loss, --seed, --pti, --pti-steps as there); what that computed is kept in --outdir, and
a later edit of the same photo with the same settings starts from it.

\b
The folder resumes like `generate`'s: it remembers what made each input and edit, outputs already
there are skipped, later runs may add inputs and edits, and two runs on one folder share the work.
A direction or latent file made for another network is refused (--force applies it anyway).""")
@click.option("--network", required=True, help="Model file, URL or model-zoo name (see `stylegan models`).")
@click.option("--seeds", type=IntList(), default=None, help="Edit these seeds' latents.")
@click.option("--latent", "latents", multiple=True, type=click.Path(), help="Saved latent file(s) to edit.")
@click.option("--photo", type=click.Path(), default=None,
              help="A photo: aligned, projected (as `stylegan project` does), then edited.")
@click.option("--edit", "edits", multiple=True, required=True, help="SOURCE[:K][@ROWS]:STRENGTHS (repeatable).")
@click.option("--values", type=click.IntRange(min=2), default=7, show_default=True,
              help="How many strengths an A..B range spreads over.")
@click.option("--together", is_flag=True,
              help="Apply every --edit at once (one strength each): one image per input, NAME_edits.png.")
@click.option("--trunc", "psi", type=float, default=0.7, show_default=True, help="Truncation for --seeds.")
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None,
              help="Class label for --seeds (conditional networks).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True,
              help="Noise for --seeds and --latent (a photo keeps its projection's noise maps).")
@click.option("--outdir", type=click.Path(file_okay=False), default="edits", show_default=True)
@click.option("--grid", is_flag=True, help="Also one grid per edit: inputs down, strengths across.")
@click.option("--video", is_flag=True, help="Also a video per input and edit sweeping the strengths.")
@click.option("--face", type=click.IntRange(min=0), default=0, show_default=True,
              help="Photo: which face to edit, 0 the largest.")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True,
              help="Photo: projection space, as in `stylegan project`.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Photo: projection steps, as in `stylegan project`.  [default: 1000]")
@click.option("--pti", is_flag=True, help="Photo: tune the generator to the photo (pivotal tuning) before editing.")
@click.option("--pti-steps", type=click.IntRange(min=1), default=350, show_default=True,
              help="Photo: most pivotal-tuning steps, as in `stylegan project`.")
@click.option("--loss", default="auto", show_default=True,
              help="Photo: the projection's loss, as in `stylegan project` (auto | vgg16 | lpips-vgg | PATH).")
@trust_code_option
@click.option("--seed", type=click.IntRange(min=0), default=303, show_default=True,
              help="Photo: the projection's seed, as in `stylegan project`.")
@click.option("--paste-back", is_flag=True, help="Photo: put each edited face back into the original photo.")
@click.option("--report", is_flag=True, help="Write report.csv: attribute change, identity distance, leakage.")
@click.option("--overwrite", is_flag=True,
              help="Start the folder afresh: replace existing outputs (for a photo, its kept projection too).")
@click.option("--force", is_flag=True, help="Apply direction and latent files made for another network.")
@max_pixels_option
@pose_options
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
@provenance_options
def edit(network, seeds, latents, photo, edits, values, together, psi, class_idx, noise_mode, outdir, grid, video,
         face, space, steps, pti, pti_steps, loss, trust_code, seed, paste_back, report, overwrite, force, max_pixels,
         translate, rotate, device, no_watermark, sign):
    """Render edits: for each input and --edit, a strip of images over the strengths (NAME_EDIT.png),
    under a caption naming each strength.

    With --photo the folder also keeps what the photo cost to compute: its aligned crop
    (NAME_aligned.png), latent (NAME.w.safetensors), reconstruction (NAME_proj.png) and tuned
    generator (NAME_pti.stylegan) or noise maps (NAME_noise.npz). A later edit of the same photo
    with the same settings and --outdir starts from them instead of projecting again."""
    from stylegan.pipelines.edit import parse_edit
    from stylegan.pipelines.photo import ALIGN_SIZE
    from stylegan.pipelines.edit_folder import PhotoFolder, edit_into_folder, latent_inputs_for, seed_inputs_for
    from stylegan.io.run_record import RunMismatchError
    from torch_utils.misc import network_digest
    from .common import ProgressPrinter, check_outdir, loss_factory_for, loss_file_first, loss_name
    if sum(x is not None and x != () for x in (seeds, latents or None, photo)) != 1:
        raise click.UsageError("give exactly one of --seeds, --latent or --photo")
    if paste_back and photo is None:
        raise click.UsageError("--paste-back needs --photo")
    if steps is not None and photo is None:
        raise click.UsageError("--steps is the photo's projection steps (as in `stylegan project`); "
                               "how many strengths an A..B range spreads over is --values")
    if together and (grid or video or report):
        raise click.UsageError("--together makes one image per input: no --grid, --video or --report")
    try:
        specs = [parse_edit(e, values) for e in edits]
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--edit") from None
    dev = resolve_device(device)
    # A --loss file is read (and refused) before anything is written or downloaded.
    feature_net = loss_file_first(loss, dev, trust_code) if photo is not None else None
    check_outdir(outdir)
    outdir = Path(outdir)
    made = base_provenance(network, no_watermark, sign)
    nets = load_networks(network, dev)
    G = nets.generator
    digest = network_digest(G)
    transform = pose(translate, rotate)
    printer = ProgressPrinter()
    try:
        if seeds is not None:
            inputs = seed_inputs_for(G, seeds, psi, class_idx, noise_mode, transform)
        elif latents:
            inputs = latent_inputs_for(G, latents, noise_mode, force, digest, transform)
        else:
            folder = PhotoFolder(G, photo, specs, outdir, loss=loss_name(loss),
                                 loss_factory=lambda: loss_factory_for(loss, nets, dev, trust_code, feature_net)(),
                                 face=face, space=space, steps=steps or 1000, pti=pti, pti_steps=pti_steps, seed=seed,
                                 paste_back=paste_back, force=force, max_pixels=max_pixels)
            inputs = folder.inputs()
        for warning in inputs.warnings:
            click.echo(f"warning: {warning}", err=True)
        result = edit_into_folder(G, inputs, specs, outdir, together=together, grid=grid, video=video, report=report,
                                  noise_mode=noise_mode, overwrite=overwrite, force=force, digest=digest,
                                  provenance=made, progress=printer)
    except RunMismatchError as e:
        raise run_mismatch_error(e) from None
    except ValueError as e:
        raise cli_error(e) from None
    finally:
        printer.close()
    photo_run = inputs.photo
    if photo_run is not None and photo_run.reused is not None:
        click.echo(f"started from the projection kept in {outdir} ({photo_run.reused.name})", err=True)
    elif photo_run is not None and photo_run.projection is not None and G.img_resolution < ALIGN_SIZE:
        click.echo(f"the face was aligned at FFHQ's {ALIGN_SIZE} px and brought to the network's "
                   f"{G.img_resolution} px (Lanczos), as `stylegan project` does", err=True)
    for note in result.report_notes:
        click.echo(f"report.csv: {note}", err=True)
    if together:
        click.echo(f"{len(specs)} edit(s) together of {len(inputs.names)} input(s) written to {outdir}", err=True)
        return
    summary = result.summary
    busy = f", {len(summary.busy)} being made by another run" if summary.busy else ""
    click.echo(f"{len(summary.written)} edit strip(s) written, {len(summary.skipped)} already present{busy}, "
               f"to {outdir}", err=True)
