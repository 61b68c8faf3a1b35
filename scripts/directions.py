"""`stylegan directions`: find edit directions (SeFa, GANSpace, InterFaceGAN, StyleSpace), describe, compare."""
from __future__ import annotations

import csv
from pathlib import Path

import click

from .common import IntList, load_generator


NETWORK_HELP = ("The network: a model file, URL or name from `stylegan models`, or an architecture such as "
                "stylegan2-256 (random weights, to try things out).")


def _generator(network):
    return load_generator(network)


def _save(direction, G, out, overwrite):
    from stylegan.io.files import WriteError
    from stylegan.editing import save_direction
    from stylegan.editing.directions import made_for
    made_for(direction, G)     # an edit then knows the network (and its ws rows) it belongs to
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        save_direction(direction, out, overwrite=overwrite)
    except FileExistsError:
        raise click.ClickException(f"{out} exists: pass --overwrite to replace it") from None
    except WriteError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{out}: cannot write ({e.strerror or e})") from None
    click.echo(f"wrote {out}: {len(direction)} {direction.method} direction(s) in {direction.space}", err=True)


@click.group("directions", context_settings={"help_option_names": ["-h", "--help"]})
def directions_group():
    """Find latent directions that edit faces, and inspect direction files.

    \b
    Examples:
      stylegan directions sefa --network ffhq --layers coarse --out sefa-coarse.direction
      stylegan directions ganspace --network ffhq --samples 100000 --out pca.direction
      stylegan directions interfacegan --network ffhq --attribute smile --samples 2000 --out smile.direction
      stylegan directions stylespace --network ffhq --region eyes --seeds 0-15 --out eyes.direction
      stylegan directions show smile.direction
      stylegan directions compare smile.direction boundaries/stylegan_ffhq_smile_w_boundary.npy
    """


@directions_group.command("sefa", epilog="""\b
Examples:
  stylegan directions sefa --network ffhq --out sefa.direction
  stylegan directions sefa --network ffhq --layers coarse --components 8 --out sefa-coarse.direction
  stylegan directions sefa --network ffhq --layers 0-3 --out sefa-0-3.direction
  stylegan edit --network ffhq --seeds 0-3 --edit sefa-coarse.direction:2:-5..5""")
@click.option("--network", required=True, help=NETWORK_HELP)
@click.option("--layers", default="all", show_default=True, help="all | coarse | middle | fine | ws rows, e.g. 0-3.")
@click.option("--components", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True)
def sefa_cmd(network, layers, components, out, overwrite):
    """Closed-form directions from the style affines' weights (seconds, no sampling)."""
    from stylegan.editing import sefa
    from stylegan.seeds import parse_int_list
    G = _generator(network)
    try:
        rows = layers if layers in ("all", "coarse", "middle", "fine") else parse_int_list(layers)
        d = sefa(G, rows, num_components=components)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    _save(d, G, out, overwrite)


@directions_group.command("ganspace", epilog="""\b
Examples:
  stylegan directions ganspace --network ffhq --out pca.direction
  stylegan directions ganspace --network ffhq --samples 20000 --components 16 --seed 1 --out pca16.direction
  stylegan edit --network ffhq --seeds 0-3 --edit pca.direction:0@0-7:-2..2   # strengths in std units""")
@click.option("--network", required=True, help=NETWORK_HELP)
@click.option("--samples", type=click.IntRange(min=2), default=100_000, show_default=True)
@click.option("--components", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True)
def ganspace_cmd(network, samples, components, seed, out, overwrite):
    """Principal components of w over SAMPLES mapped latents (strengths in std units)."""
    from stylegan.editing import ganspace
    G = _generator(network)
    try:
        d = ganspace(G, num_samples=samples, num_components=components, seed=seed)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    _save(d, G, out, overwrite)


@directions_group.command("interfacegan", epilog="""\b
Examples:
  stylegan directions interfacegan --network ffhq --attribute smile --out smile.direction
  stylegan directions interfacegan --network ffhq --scores smile.csv --out smile.direction
  stylegan directions interfacegan --network ffhq --attribute yaw --condition smile.direction --out yaw.direction
  stylegan directions interfacegan --network ffhq --scores smile.csv --method svm --out smile-paper.direction

\b
--scores reads 'seed,score' rows (a header line is allowed): the latents are those of the seeds, as
`stylegan generate --seeds` draws them.""")
@click.option("--network", required=True, help=NETWORK_HELP)
@click.option("--attribute", default=None, help="Built-in landmark labeler: smile, mouth_open, eyes_open, roll, yaw, pitch.")
@click.option("--scores", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV of seed,score rows (a header line is allowed) instead of a labeler.")
@click.option("--samples", type=click.IntRange(min=4), default=2000, show_default=True,
              help="Images rendered and scored by --attribute.")
@click.option("--method", type=click.Choice(["ridge", "svm"]), default="ridge", show_default=True,
              help="ridge: ridge regression of the score on w over every sample (from 2000 samples of a 512-d W, "
                   "5 % score noise, it recovers a planted direction with |cos| 0.99 where the SVM gets 0.26); "
                   "svm: the paper's linear SVM on the top and bottom --ratio, for parity with InterFaceGAN's "
                   "boundary files.")
@click.option("--ratio", type=click.FloatRange(0, 0.5, min_open=True), default=None,
              help="With --method svm: the fraction of top and of bottom scores used as examples  [default: 0.02, "
                   "the paper's]")
@click.option("--condition", "conditions", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Direction file of an attribute to keep unchanged (repeatable).")
@click.option("--trunc", "psi", type=float, default=1.0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True)
def interfacegan_cmd(network, attribute, scores, samples, method, ratio, conditions, psi, out, overwrite):
    """The direction along which an attribute score grows: the normal of the plane that separates high
    from low scores in w (InterFaceGAN)."""
    from stylegan.editing import interfacegan, load_direction
    if (attribute is None) == (scores is None):
        raise click.UsageError("give either --attribute or --scores")
    if ratio is not None and method != "svm":
        raise click.UsageError("--ratio goes with --method svm (ridge uses every sample)")
    G = _generator(network)
    try:
        conds = [load_direction(c, w_dim=G.w_dim) for c in conditions]
        if scores:
            score = _read_scores(scores)
        else:
            from stylegan.faces.attributes import FaceAttributes
            score = FaceAttributes().scorer(attribute)
        d = interfacegan(G, score, num_samples=samples, method=method, ratio=ratio, conditions=conds, psi=psi)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    d.params["attribute"] = attribute or Path(scores).name
    _save(d, G, out, overwrite)


def _read_scores(path) -> dict[int, float]:
    from stylegan.io.files import check_regular_file
    out = {}
    with open(check_regular_file(path, "a CSV file"), newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            if not row or (i == 0 and not row[0].strip().lstrip("-").isdigit()):
                continue
            try:
                out[int(row[0])] = float(row[1])
            except (ValueError, IndexError):
                raise ValueError(f"{path}, line {i + 1}: expected 'seed,score', got {','.join(row)!r}") from None
    return out


@directions_group.command("stylespace", epilog="""\b
Examples:
  stylegan directions stylespace --network ffhq --region eyes --out eyes.direction
  stylegan directions stylespace --network ffhq --region mouth --seeds 0-31 --top 20 --out mouth.direction
  stylegan directions stylespace --network ffhq --mask hair-mask.png --out hair.direction
  stylegan edit --network ffhq --seeds 0-3 --edit eyes.direction:0:-10..10   # applied in S""")
@click.option("--network", required=True, help=NETWORK_HELP)
@click.option("--region", default=None, help="eyes | mouth | nose | brows | hair (from landmarks of each seed's face).")
@click.option("--mask", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A mask image instead (white = region), at the network's resolution.")
@click.option("--seeds", type=IntList(), default="0-7", show_default=True)
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--trunc", "psi", type=float, default=0.7, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True)
def stylespace_cmd(network, region, mask, seeds, top, psi, out, overwrite):
    """Single style channels local to a face region, ranked by gradient energy inside vs outside."""
    import numpy as np
    import torch
    from stylegan.editing import region_mask, stylespace
    from stylegan.faces import read_photo
    from stylegan.pipelines import generate, map_seeds
    if (region is None) == (mask is None):
        raise click.UsageError("give either --region or --mask")
    G = _generator(network)
    try:
        ws = map_seeds(G, seeds, psi)
        if mask is not None:
            m = read_photo(mask)[..., 0].astype(np.float32) / 255
            if m.shape != (G.img_resolution, G.img_resolution):
                raise ValueError(f"{mask}: mask is {m.shape[1]}x{m.shape[0]}, the network makes "
                                 f"{G.img_resolution}x{G.img_resolution}")
        else:
            from stylegan.faces import DlibLandmarks
            det = DlibLandmarks()
            masks = [region_mask(f[0], region, G.img_resolution) for f in map(det, generate(G, seeds, psi)) if f]
            if not masks:
                raise ValueError("no face found in the seeds' images to place the region: use --mask")
            m = np.mean(masks, axis=0)
        d = stylespace(G, ws, torch.from_numpy(m), top=top)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    d.params["region"] = region or Path(mask).name
    _save(d, G, out, overwrite)


@directions_group.command("show", epilog="""\b
Examples:
  stylegan directions show smile.direction
  stylegan directions show stylegan_ffhq_smile_w_boundary.npy ganspace.npz factor.pt""")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def show(files):
    """Describe direction files (ours or shared: .npy, .npz, .pt)."""
    from stylegan.editing import load_direction
    for path in files:
        try:
            d = load_direction(path)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        std = f", std {', '.join(f'{s:.3g}' for s in d.std[:4].tolist())}{'...' if len(d) > 4 else ''}" \
            if d.std is not None else ""
        rows = f", ws rows {d.layers[0]}-{d.layers[-1]}" if d.layers else ""
        digest = f", network {d.network_digest[:12]}" if d.network_digest else ""
        click.echo(f"{path}: {d.method}, {len(d)} x {d.space}[{d.dim}]{rows}{std}{digest}")
        for key, value in d.params.items():
            text = str(value)
            click.echo(f"  {key}: {text[:100] + '...' if len(text) > 100 else text}")


@directions_group.command("compare", epilog="""\b
Examples:
  stylegan directions compare smile.direction boundaries/stylegan_ffhq_smile_w_boundary.npy
  stylegan directions compare sefa.direction pca.direction --components 4

\b
Output: the cosine of every pair, A's components in rows and B's in columns:
  cosine       B0       B1
  A0      +0.9731  -0.0412
  A1      +0.0138  +0.8820""")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--components", "k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Compare the first K components of each.")
def compare(a, b, k):
    """Print the cosines between the directions in files A and B, component by component."""
    from stylegan.editing import cosine, load_direction
    try:
        da, db = load_direction(a), load_direction(b)
        table = [[cosine(da, db, i, j) for j in range(min(k, len(db)))] for i in range(min(k, len(da)))]
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"A = {a}, B = {b}")
    click.echo("cosine".ljust(6) + "".join(f"{f'B{j}':>9}" for j in range(len(table[0]))))
    for i, row in enumerate(table):
        click.echo(f"A{i}".ljust(6) + "".join(f"{c:>+9.4f}" for c in row))
