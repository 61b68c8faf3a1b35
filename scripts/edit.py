"""`stylegan edit`: move latents (seeds, saved latents or a photo) along directions and render the results."""
from __future__ import annotations

from pathlib import Path

import click

from .common import IntList, base_provenance, cli_error, load_networks, provenance_options, resolve_device


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
strengths spread over the range).

\b
--photo is aligned and projected exactly as `stylegan align` + `stylegan project` do (--space,
--steps, --loss, --seed, --pti, --pti-steps as there); what that computed is kept in --outdir, and
a later edit of the same photo with the same settings starts from it.""")
@click.option("--network", required=True, help="Model file, URL or model-zoo name (see `stylegan models`).")
@click.option("--seeds", type=IntList(), default=None, help="Edit these seeds' latents.")
@click.option("--latent", "latents", multiple=True, type=click.Path(), help="Saved latent file(s) to edit.")
@click.option("--photo", type=click.Path(), default=None,
              help="A photo: aligned, projected (as `stylegan project` does), then edited.")
@click.option("--edit", "edits", multiple=True, required=True, help="SOURCE[:K][@ROWS]:STRENGTHS (repeatable).")
@click.option("--values", type=click.IntRange(min=2), default=7, show_default=True,
              help="How many strengths an A..B range spreads over.")
@click.option("--trunc", "psi", type=float, default=0.7, show_default=True, help="Truncation for --seeds.")
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
@click.option("--seed", type=click.IntRange(min=0), default=303, show_default=True,
              help="Photo: the projection's seed, as in `stylegan project`.")
@click.option("--paste-back", is_flag=True, help="Photo: put each edited face back into the original photo.")
@click.option("--report", is_flag=True, help="Write report.csv: attribute change, identity distance, leakage.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (for a photo, its kept projection too).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
@provenance_options
def edit(network, seeds, latents, photo, edits, values, psi, outdir, grid, video, face, space, steps, pti, pti_steps,
         loss, seed, paste_back, report, overwrite, device, no_watermark, sign):
    """Render edits: for each input and --edit, a strip of images over the strengths (NAME_EDIT.png).

    With --photo the folder also keeps what the photo cost to compute: its aligned crop
    (NAME_aligned.png), latent (NAME.w.safetensors), reconstruction (NAME_proj.png) and tuned
    generator (NAME_pti.stylegan) or noise maps (NAME_noise.npz). A later edit of the same photo
    with the same settings and --outdir starts from them instead of projecting again."""
    import numpy as np
    from stylegan.pipelines.edit import parse_edit, render_edits, strip
    from stylegan.pipelines.edit_report import EditMeasures, EditReport, write_report
    from stylegan.pipelines.writer import save_image
    from .common import check_outdir
    if sum(x is not None and x != () for x in (seeds, latents or None, photo)) != 1:
        raise click.UsageError("give exactly one of --seeds, --latent or --photo")
    if paste_back and photo is None:
        raise click.UsageError("--paste-back needs --photo")
    if steps is not None and photo is None:
        raise click.UsageError("--steps is the photo's projection steps (as in `stylegan project`); "
                               "how many strengths an A..B range spreads over is --values")
    try:
        specs = [parse_edit(e, values) for e in edits]
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--edit") from None
    check_outdir(outdir)
    outdir = Path(outdir)
    made = base_provenance(network, no_watermark, sign)
    dev = resolve_device(device)
    nets = load_networks(network, dev)
    G = nets.generator
    from stylegan.provenance import file_digest
    from torch_utils.misc import network_digest
    made = made.with_(operation="edit", network=network_digest(G))
    edited = None
    try:
        if seeds is not None:
            import torch
            from stylegan.pipelines import map_seeds
            with torch.no_grad():
                ws = map_seeds(G, seeds, psi)
            names = [f"seed{s:04d}" for s in seeds]
            inputs = [made.with_(seed=int(s), psi=psi) for s in seeds]
        elif latents:
            import torch
            from stylegan.io.latents import check_compatible, load_latents
            loaded = [load_latents(p) for p in latents]
            for lat in loaded:
                check_compatible(lat, G)
            ws_list = [_as_ws(G, lat.ws) for lat in loaded]
            ws = torch.cat(ws_list)
            names = [Path(p).name.split(".")[0] + (f"_{j}" if len(w) > 1 else "")
                     for p, w in zip(latents, ws_list) for j in range(len(w))]
            inputs = [made.with_(latent=file_digest(p)) for p, w in zip(latents, ws_list) for _ in range(len(w))]
        else:
            names = [Path(photo).stem]
            inputs = [made.with_(photo=file_digest(photo), details={"projection": space, "pti": bool(pti)})]
            _refuse_existing(outdir, names, specs, grid, video, report, overwrite)
            edited = _edit_photo(G, nets, dev, photo, specs, outdir, face=face, space=space, steps=steps or 1000,
                                 pti=pti, pti_steps=pti_steps, loss=loss, seed=seed, paste_back=paste_back,
                                 report=report, overwrite=overwrite, provenance=inputs[0])
            specs = edited.edits
        if edited is not None:      # one input: [S, 1, H, W, C] per edit, as render_edits gives
            results = [f[:, None] for f in (edited.pasted if paste_back else edited.crops)]
        else:
            results = render_edits(G, ws, specs)
    except ValueError as e:
        raise cli_error(e) from None

    measured = edited.report if edited is not None else EditReport() if report else None
    measures = EditMeasures() if report and edited is None else None
    for spec, images in zip(specs, results):
        for i, name in enumerate(names):
            path = outdir / f"{name}_{spec.label}.png"
            if path.exists() and not overwrite and edited is None:
                raise click.ClickException(f"{path} exists: pass --overwrite to replace it")
            frames = images[:, i]
            mine = inputs[i].with_(edits=tuple((spec.label, s) for s in spec.strengths))
            if edited is not None and paste_back:
                mine = mine.with_(kind="composite", operation="paste-back")
            save_image(strip(frames), path, mine)
            if video:
                from stylegan.pipelines.video import write_video
                write_video(iter(frames), outdir / f"{name}_{spec.label}.mp4", fps=max(2, len(frames) // 2),
                            provenance=mine.with_(signer=None))
            if measures is not None:
                measured.extend(measures.rows(name, spec, frames))
        if grid:
            save_image(np.concatenate([strip(images[:, i]) for i in range(len(names))], axis=0),
                       outdir / f"grid_{spec.label}.png",
                       made.with_(edits=tuple((spec.label, s) for s in spec.strengths), details={"inputs": names}))
    if measured is not None:
        write_report(outdir / "report.csv", measured.rows)
        for note in measured.notes:
            click.echo(f"report.csv: {note}", err=True)
    click.echo(f"{len(specs)} edit(s) of {len(names)} input(s) written to {outdir}", err=True)


def _as_ws(G, ws):
    from stylegan.editing.apply import as_ws
    return as_ws(G, ws)


def _refuse_existing(outdir, names, specs, grid, video, report, overwrite):
    """Before a photo's minutes of projection: outputs that would be replaced stop the run now."""
    if overwrite:
        return
    paths = [outdir / f"{n}_{s.label}{ext}" for n in names for s in specs for ext in (".png", ".mp4")[:1 + video]]
    paths += [outdir / f"grid_{s.label}.png" for s in specs] if grid else []
    paths += [outdir / "report.csv"] if report else []
    for path in paths:
        if path.exists():
            raise click.ClickException(f"{path} exists: pass --overwrite to replace it")


def _edit_photo(G, nets, device, photo, specs, outdir, *, face, space, steps, pti, pti_steps, loss, seed,
                paste_back, report, overwrite, provenance):
    """The photo story (stylegan.edit_photo), starting from the projection the folder keeps when
    it was made with the same settings, and keeping a new one there."""
    from stylegan.faces import read_photo
    from stylegan.pipelines.manifest import RunMismatchError
    from stylegan.pipelines.photo import (check_edits, edit_photo, load_projection, photo_settings, project_photo,
                                          save_projection)
    from .common import ProgressPrinter, loss_factory_for, loss_name, run_mismatch_error
    image = read_photo(photo)
    name = Path(photo).stem
    directions = {}
    specs = check_edits(G, specs, directions)               # a bad edit stops here, not after the projection
    settings = photo_settings(G, image, face=face, space=space, steps=steps, seed=seed, loss=loss_name(loss),
                              pti_steps=pti_steps if pti else 0)
    try:
        kept = None if overwrite else load_projection(G, outdir, name, settings)
    except RunMismatchError as e:
        raise run_mismatch_error(e, outdir / f"{name}.w.safetensors") from None
    printer = ProgressPrinter()
    try:
        if kept is None:     # kept as soon as it exists: an interrupted edit does not cost the projection
            _, kept = project_photo(G, image, face=face, space=space, steps=steps, pti=pti, pti_steps=pti_steps,
                                    loss=loss_factory_for(loss, nets, device)(), seed=seed, progress=printer)
            save_projection(kept, outdir, name, settings, image.shape, source=photo, provenance=provenance)
        else:
            click.echo(f"starting from the projection kept in {outdir} ({name}.w.safetensors)", err=True)
        kept.directions.update(directions)
        return edit_photo(G, image, specs, paste_back=paste_back, report=report, projection=kept, name=name,
                          progress=printer)
    finally:
        printer.close()
