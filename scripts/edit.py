"""`stylegan edit`: move latents (seeds, saved latents or a photo) along directions and render the results."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from .common import IntList, load_networks, pose, pose_options, resolve_device


@click.command(epilog="""\b
Examples:
  stylegan edit --network ffhq --seeds 0-3 --edit sefa:2@0-3:-5..5 --outdir edits/
  stylegan edit --network ffhq --latent proj/me.w.safetensors --edit smile.npy:-3..3 --grid
  stylegan edit --network ffhq --photo me.jpg --edit smile.direction:-2,2 --paste-back --outdir edits/
  stylegan edit --network ffhq --seeds 7 --edit sefa:2@0-3:1.5 --edit age.npy:-1 --together

\b
--edit SOURCE[:K][@ROWS]:STRENGTHS, repeatable. SOURCE: a direction file (ours, InterFaceGAN .npy,
GANSpace .npz, e4e/PTI .pt, rosinality factor.pt), a registry direction (`stylegan models --kind
direction`, e.g. interfacegan-ffhq-smile, downloaded once) or 'sefa' / 'ganspace' computed on the spot;
K the component; ROWS the ws rows to move (e.g. 0-3: coarse); STRENGTHS 3, -2,0,2 or -3..3.""")
@click.option("--network", required=True, help="Model file, URL or model-zoo name (see `stylegan models`).")
@click.option("--seeds", type=IntList(), default=None, help="Edit these seeds' latents.")
@click.option("--latent", "latents", multiple=True, type=click.Path(), help="Saved latent file(s) to edit.")
@click.option("--photo", type=click.Path(), default=None, help="A photo: aligned, projected, then edited.")
@click.option("--edit", "edits", multiple=True, required=True, help="SOURCE[:K][@ROWS]:STRENGTHS (repeatable).")
@click.option("--steps", type=click.IntRange(min=2), default=7, show_default=True, help="Values in an A..B range.")
@click.option("--together", is_flag=True,
              help="Apply every --edit at once (one strength each): one image per input, NAME_edits.png.")
@click.option("--trunc", "psi", type=float, default=0.7, show_default=True, help="Truncation for --seeds.")
@click.option("--class", "class_idx", type=click.IntRange(min=0), default=None,
              help="Class label for --seeds (conditional networks).")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--outdir", type=click.Path(file_okay=False), default="edits", show_default=True)
@click.option("--grid", is_flag=True, help="Also one grid per edit: inputs down, strengths across.")
@click.option("--video", is_flag=True, help="Also a video per input and edit sweeping the strengths.")
@click.option("--space", type=click.Choice(["w", "w+"]), default="w", show_default=True, help="Photo projection space.")
@click.option("--project-steps", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--pti", is_flag=True, help="Photo: tune the generator to the photo (pivotal tuning) before editing.")
@click.option("--paste-back", is_flag=True, help="Photo: put each edited face back into the original photo.")
@click.option("--report", is_flag=True, help="Write report.csv: attribute change, identity distance, leakage.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@pose_options
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or mps.")
def edit(network, seeds, latents, photo, edits, together, steps, psi, class_idx, noise_mode, outdir, grid, video,
         space, project_steps, pti, paste_back, report, overwrite, translate, rotate, device):
    """Render edits: for each input and --edit, a strip of images over the strengths (NAME_EDIT.png)."""
    import numpy as np
    import torch
    from stylegan.pipelines.edit import parse_edit, render_edits, render_together, strip
    from stylegan.pipelines.generate import input_transform
    from stylegan.pipelines.writer import save_image
    from .common import check_outdir
    if sum(x is not None and x != () for x in (seeds, latents or None, photo)) != 1:
        raise click.UsageError("give exactly one of --seeds, --latent or --photo")
    if paste_back and photo is None:
        raise click.UsageError("--paste-back needs --photo")
    if together and (grid or video or report):
        raise click.UsageError("--together makes one image per input: no --grid, --video or --report")
    try:
        specs = [parse_edit(e, steps) for e in edits]
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--edit") from None
    check_outdir(outdir)
    outdir = Path(outdir)
    dev = resolve_device(device)
    nets = load_networks(network, dev)
    G = nets.generator if hasattr(nets, "generator") else nets["G_ema"]
    aligned = None
    try:
        if seeds is not None:
            from stylegan.pipelines import map_seeds
            with torch.no_grad():
                ws = map_seeds(G, seeds, psi, class_idx=class_idx)
            names = [f"seed{s:04d}" for s in seeds]
        elif latents:
            from stylegan.io.latents import check_compatible, load_latents
            loaded = [load_latents(p) for p in latents]
            for lat in loaded:
                check_compatible(lat, G)
            ws_list = [_as_ws(G, lat.ws) for lat in loaded]
            ws = torch.cat(ws_list)
            names = [Path(p).name.split(".")[0] + (f"_{j}" if len(w) > 1 else "")
                     for p, w in zip(latents, ws_list) for j in range(len(w))]
        else:
            ws, G, aligned = _photo(G, nets, photo, space, project_steps, pti)
            names = [Path(photo).stem]
        with input_transform(G, pose(translate, rotate)):
            # (spec, images [S, N, H, W, C]) per output; together, one output without a spec of its own.
            outputs = [(None, render_together(G, ws, specs, noise_mode)[None])] if together else \
                list(zip(specs, render_edits(G, ws, specs, noise_mode)))
    except ValueError as e:
        raise click.ClickException(str(e)) from None

    rows = []
    for spec, images in outputs:
        for i, name in enumerate(names):
            path = outdir / f"{name}_{spec.label if spec else 'edits'}.png"
            if path.exists() and not overwrite:
                raise click.ClickException(f"{path} exists: pass --overwrite to replace it")
            frames = images[:, i]
            if aligned is not None and paste_back:
                from stylegan.faces.paste import paste_back as paste
                photo_img, face = aligned
                frames = np.stack([paste(photo_img, f, face) for f in frames])
            save_image(strip(frames), path)
            if video:
                from stylegan.pipelines.video import write_video
                write_video(iter(frames), outdir / f"{name}_{spec.label}.mp4", fps=max(2, len(frames) // 2))
            if report:
                # What the user gets is measured: pasted photos with --paste-back, else the crops;
                # for a photo, also each result's identity distance to the person in the photo.
                ref = None if aligned is None else aligned[0] if paste_back else aligned[1].image
                if aligned is not None and paste_back:   # only the face's own region: no other face counts
                    ref, frames = _face_region(aligned[1], [ref, *frames])[0], _face_region(aligned[1], frames)
                rows += _report_rows(name, spec, frames, ref)
        if grid:
            save_image(np.concatenate([strip(images[:, i]) for i in range(len(names))], axis=0),
                       outdir / f"grid_{spec.label}.png")
    if report:
        _write_report(outdir / "report.csv", rows)
    click.echo(f"{len(specs)} edit(s) of {len(names)} input(s) written to {outdir}", err=True)


def _as_ws(G, ws):
    from stylegan.editing.apply import as_ws
    return as_ws(G, ws)


def _photo(G, nets, photo, space, steps, pti):
    """photo -> (ws [1, num_ws, w_dim], generator to edit with, (photo, aligned face))."""
    from stylegan.faces import align_face, read_photo
    from stylegan.inversion import pivotal_tuning, project
    from stylegan.inversion.losses import default_distance
    image = read_photo(photo)
    face = align_face(image, size=G.img_resolution)[0]
    target = face.image.transpose(2, 0, 1)
    D = nets["D"] if "D" in nets else None
    bar = click.progressbar(length=steps, label="projecting", file=sys.stderr)
    result = project(G, target, default_distance(D), space=space, num_steps=steps,
                     progress=lambda info: bar.update(1))
    bar.render_finish()
    if pti:
        bar = click.progressbar(length=350, label="tuning   ", file=sys.stderr)
        tuned = pivotal_tuning(G, target, result, default_distance(D), progress=lambda info: bar.update(1))
        bar.render_finish()
        G = tuned.G
    else:
        # Keep the projection's own noise maps: they are part of the reconstruction.
        import copy
        from stylegan.inversion.project import noise_layers
        G = copy.deepcopy(G)
        for name, layer in noise_layers(G).items():
            layer.noise_const = result.noise[name]
    return result.ws[None], G, (image, face)


def _face_region(face, images):
    """The part of photo-sized images inside the aligned face's crop quad (clipped to the photo)."""
    import numpy as np
    h, w = images[0].shape[:2]
    (x0, y0), (x1, y1) = np.floor(face.quad.min(0)).astype(int), np.ceil(face.quad.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return np.stack([np.ascontiguousarray(im[y0:y1, x0:x1]) for im in images])


def _report_rows(name, spec, images, photo=None):
    """Per strength: every landmark attribute and the identity distance to the unedited image (and,
    given the input photo, to it)."""
    import numpy as np
    from stylegan.faces.attributes import ATTRIBUTES, FaceAttributes
    from stylegan.faces.identity import FaceIdentity
    attrs, ident = FaceAttributes(), FaceIdentity()
    zero = int(np.argmin(np.abs(spec.strengths)))
    base = attrs(images[zero])
    base_id = ident.descriptor(images[zero])
    photo_id = None if photo is None else ident.descriptor(photo)
    dist = lambda a, b: "" if a is None or b is None else f"{np.linalg.norm(a - b):.4f}"  # noqa: E731
    rows = []
    for strength, img in zip(spec.strengths, images):
        a = attrs(img)
        d = ident.descriptor(img)
        row = {"input": name, "edit": spec.label, "strength": strength,
               "identity_distance": dist(d, base_id)}
        if photo is not None:
            row["identity_to_photo"] = dist(d, photo_id)
        row.update({f"d_{k}": f"{a[k] - base[k]:.4f}" for k in ATTRIBUTES})
        rows.append(row)
    return rows


def _write_report(path, rows):
    from stylegan._files import atomic_output
    if not rows:
        return
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
