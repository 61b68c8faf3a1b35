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
    from stylegan.pipelines.edit import edit_settings, latent_inputs, parse_edit, seed_inputs, write_edits
    from stylegan.pipelines.generate import input_transform
    from stylegan.io.run_record import RunMismatchError
    from stylegan.provenance import file_digest
    from torch_utils.misc import network_digest
    from .common import ProgressPrinter, check_outdir, loss_file_first
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
    made = made.with_(operation="edit", network=digest)
    edit_G, finish, cache, photo_run, ws = G, None, {}, None, None
    printer = ProgressPrinter()
    try:
        if seeds is not None:
            ws, names, inputs = seed_inputs(G, seeds, psi, class_idx=class_idx)
            posed = {} if pose(translate, rotate) is None else {"transform": pose(translate, rotate).tolist()}
            origins = [made.with_(seed=int(s), psi=psi, class_idx=class_idx, noise_mode=noise_mode, details=posed)
                       for s in seeds]
        elif latents:
            ws, names, inputs, warnings = latent_inputs(G, latents, force, digest)
            origins = [made.with_(latent=inputs[n]["latent"], noise_mode=noise_mode) for n in names]
            for warning in warnings:
                click.echo(f"warning: {warning}", err=True)
        else:
            photo_run = _PhotoRun(G, nets, dev, photo, specs, outdir, cache, face=face, space=space,
                                  steps=steps or 1000, pti=pti, pti_steps=pti_steps, loss=loss, trust_code=trust_code,
                                  feature_net=feature_net, seed=seed, paste_back=paste_back, force=force,
                                  max_pixels=max_pixels)
            names, inputs = [photo_run.name], {photo_run.name: {"projection": photo_run.settings}}
            origins = [made.with_(photo=file_digest(photo), details={"projection": space, "pti": bool(pti)})]
        if together:
            return _together(G, ws, names, specs, outdir, origins, photo_run, pose(translate, rotate), noise_mode,
                             overwrite, force, printer)
        settings = edit_settings(digest, specs, inputs, extra={"paste_back": paste_back} if photo else None)
        if photo_run is not None:
            ws = None
            if photo_run.needed(settings, video, report, overwrite, printer, origins[0]):   # else every strip is on disk
                edit_G, ws = photo_run.projection.G, photo_run.projection.ws
            if paste_back:
                finish = photo_run.paste
        with input_transform(edit_G, pose(translate, rotate) if photo_run is None else None):
            summary = write_edits(edit_G, ws, names, specs, outdir, settings=settings, noise_mode=noise_mode,
                                  video=video, grid=grid, overwrite=overwrite, force=force, digest=digest,
                                  finish=finish, cache=cache, provenance=made, origins=origins, progress=printer)
        if report:
            _report(outdir, names, specs, photo_run)
    except RunMismatchError as e:
        raise run_mismatch_error(e, outdir, {"network": "--network", "inputs": "the inputs", "edits": "--edit",
                                             "paste_back": "--paste-back", "noise_mode": "the noise mode"}) from None
    except ValueError as e:
        raise cli_error(e) from None
    finally:
        printer.close()
    busy = f", {len(summary.busy)} being made by another run" if summary.busy else ""
    click.echo(f"{len(summary.written)} edit strip(s) written, {len(summary.skipped)} already present{busy}, "
               f"to {outdir}", err=True)


class _PhotoRun:
    """--photo: the photo read (within --max-pixels), its edits checked against G before anything
    slow, and its projection: the one the folder keeps when made with the same settings, else made
    now and kept at once (an interrupted edit does not cost the projection)."""

    def __init__(self, G, nets, device, photo, specs, outdir, cache, *, face, space, steps, pti, pti_steps, loss,
                 trust_code, feature_net, seed, paste_back, force, max_pixels):
        from stylegan.faces import read_photo
        from stylegan.pipelines.photo import check_edits, photo_settings
        from .common import loss_name
        self.G, self.nets, self.device, self.path, self.outdir, self.specs = G, nets, device, photo, outdir, specs
        self.image = read_photo(photo, max_pixels=max_pixels)
        self.name = Path(photo).stem
        check_edits(G, specs, cache, force)        # a bad edit stops here, not after the projection
        self.settings = photo_settings(G, self.image, face=face, space=space, steps=steps, seed=seed,
                                       loss=loss_name(loss), pti_steps=pti_steps if pti else 0)
        self.project_kwargs = dict(face=face, space=space, steps=steps, pti=pti, pti_steps=pti_steps, seed=seed)
        self.loss, self.trust_code, self.feature_net, self.paste_back = loss, trust_code, feature_net, paste_back
        self.projection = None

    def needed(self, settings, video, report, overwrite, progress, provenance) -> bool:
        """Make or read the projection, unless every strip is already on disk (and no report asks
        for it). A projection kept with other settings, then the folder's record, are checked first:
        a folder made otherwise stops the run, naming what differs, before minutes of projection."""
        from stylegan.pipelines.edit import GROWS, pending
        from stylegan.io.run_record import check_run_record, prepare_outdir
        kept = self.kept(overwrite)
        check_run_record(prepare_outdir(self.outdir), settings, overwrite, "*.png", grows=GROWS)
        if not report and not pending(self.outdir, [self.name], self.specs, video, overwrite):
            return False
        self.make(kept, progress, provenance)
        return True

    def make(self, kept, progress, provenance):
        """The projection: `kept` (read from the folder) or made now and kept at once."""
        from stylegan.pipelines.photo import project_photo, save_projection
        from .common import loss_factory_for
        if kept is None:
            loss = loss_factory_for(self.loss, self.nets, self.device, self.trust_code, self.feature_net)()
            _, kept = project_photo(self.G, self.image, loss=loss, progress=progress, **self.project_kwargs)
            save_projection(kept, self.outdir, self.name, self.settings, self.image.shape, source=self.path,
                            provenance=provenance)
        else:
            click.echo(f"starting from the projection kept in {self.outdir} ({self.name}.w.safetensors)", err=True)
        self.projection = kept

    def kept(self, overwrite):
        """The projection the folder keeps for these settings, or None."""
        from stylegan.io.run_record import RunMismatchError
        from stylegan.pipelines.photo import load_projection
        try:
            return None if overwrite else load_projection(self.G, self.outdir, self.name, self.settings)
        except RunMismatchError as e:
            raise run_mismatch_error(e, self.outdir / f"{self.name}.w.safetensors") from None

    def paste(self, frames, i):
        from stylegan.pipelines.photo import paste_faces
        return paste_faces(self.image, self.projection.face, frames)


def _together(G, ws, names, specs, outdir, origins, photo_run, transform, noise_mode, overwrite, force, progress):
    """--together: every edit at once, one image per input (NAME_edits.png; a photo's pasted back
    with --paste-back). One image each and no run record: an existing output stops the run."""
    from stylegan.pipelines.edit import moves, render_together, resolve_direction
    from stylegan.pipelines.generate import input_transform
    from stylegan.io.run_record import prepare_outdir
    from stylegan.io.image_files import save_image
    outdir = Path(outdir)
    cache = {}
    for spec in specs:                  # checked (and files read) before anything slow
        resolve_direction(spec, G, cache, force)
    moves(G, specs, cache)
    paths = [outdir / f"{name}_edits.png" for name in names]
    if not overwrite:
        for path in paths:
            if path.exists():
                raise click.ClickException(f"{path} exists: pass --overwrite to replace it")
    applied = tuple((s.label, s.strengths[0]) for s in specs)
    if photo_run is not None:
        photo_run.make(photo_run.kept(overwrite), progress, origins[0])
        p = photo_run.projection
        images = render_together(p.G, p.ws, specs, cache=cache)
        if photo_run.paste_back:
            images = photo_run.paste(images, 0)
            origins = [origins[0].with_(kind="composite", operation="paste-back")]
    else:
        with input_transform(G, transform):
            images = render_together(G, ws, specs, noise_mode, cache=cache)
    prepare_outdir(outdir)
    for image, path, origin in zip(images, paths, origins):
        save_image(image, path, origin.with_(edits=applied))
    click.echo(f"{len(specs)} edit(s) together of {len(names)} input(s) written to {outdir}", err=True)


def _report(outdir, names, specs, photo_run):
    """report.csv, measured on the strips as written: what the user gets (for a photo with
    --paste-back the pasted photos, inside the face's region only), with a photo's identity distance
    to the person in it."""
    import numpy as np
    from stylegan.pipelines.edit import read_strip
    from stylegan.pipelines.edit_report import EditMeasures, EditReport, face_region, write_report
    measures, report = EditMeasures(), EditReport()
    for spec in specs:
        for name in names:
            frames = read_strip(outdir / f"{name}_{spec.label}.png", len(spec.strengths))
            if photo_run is None:
                report.extend(measures.rows(name, spec, frames))
            elif photo_run.paste_back:      # measured inside the face's region of the photo only
                ref, *crops = face_region(photo_run.projection.face, np.concatenate([photo_run.image[None], frames]))
                report.extend(measures.rows(name, spec, np.stack(crops), ref))
            else:
                report.extend(measures.rows(name, spec, frames, photo_run.projection.face.image))
    write_report(outdir / "report.csv", report.rows)
    for note in report.notes:
        click.echo(f"report.csv: {note}", err=True)
