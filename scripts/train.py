"""`stylegan train`: NVIDIA's train.py flags -> stylegan.training; a line per tick on stderr (rank 0)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from .common import base_provenance, provenance_options

# Flags that may change when a run continues (the rest are the run's, fixed when it started).
_CONTINUE_FLAGS = {"resume", "kimg", "snap", "tick", "metrics", "data", "device", "workers", "outdir", "gpus",
                   "no_watermark", "sign"}


def _metric_list(ctx, param, value):
    if value is None or value.strip().lower() in ("", "none"):
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


@click.command(epilog="""\b
Examples:
  stylegan train --data faces.zip --outdir runs --kimg 1000                   # --cfg auto, ADA
  stylegan train --data faces.zip --outdir runs --cfg paper256 --mirror 1 --resume stylegan2-ffhq-256
  stylegan train --data afhq.zip --outdir runs --cfg stylegan3-t --gpus 8 --batch 32 --gamma 8.2
  stylegan train --resume runs/00003-auto-faces-gpus1-batch16-gamma2/       # continue where it stopped
  torchrun --nproc-per-node 4 -m scripts.cli train --data faces.zip --outdir runs --batch 64

\b
A first run on a CPU (seconds per tick, tiny networks, no metrics):
  stylegan train --data faces.zip --outdir runs --cfg stylegan2 --batch 4 --cbase 1024 --cmax 32 \\
      --map 2 --kimg 2 --tick 0.2 --snap 5 --metrics none

\b
--resume: a run folder, or one of its snapshots without --data, continues that run in its folder:
the same settings, optimisers, augment p, data order and random streams, as if it had never
stopped (--kimg may extend it). Any other model (NVIDIA or TF pickle, rosinality .pt, .stylegan
file, URL or `stylegan models` name) starts a new run fine-tuning it. Ctrl-C stops after the current
iteration with a snapshot; a second Ctrl-C aborts at once (the last snapshot stays).""")
@click.option("--outdir", type=click.Path(), default="training-runs", show_default=True,
              help="Where new run folders (NNNNN-desc) are made.")
@click.option("--cfg", type=click.Choice(["auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar",
                                          "stylegan3-t", "stylegan3-r"]), default=None,
              help="Base configuration (NVIDIA's presets)  [default: auto, or a fine-tuned StyleGAN3 network's]")
@click.option("--data", type=click.Path(), default=None, help="Training data: a zip or folder of images (NVIDIA's format).")
@click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes (one per GPU) to launch under torchrun.")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Total batch size  [default: the preset's]")
@click.option("--batch-gpu", type=click.IntRange(min=1), default=None, help="Images per forward pass per GPU.")
@click.option("--gamma", type=click.FloatRange(min=0), default=None, help="R1 weight  [default: the preset's]")
@click.option("--kimg", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Training length in thousands of real images  [default: the preset's]")
@click.option("--tick", type=click.FloatRange(min=0, min_open=True), default=4, show_default=True,
              help="kimg between progress lines.")
@click.option("--snap", type=click.IntRange(min=1), default=50, show_default=True, help="Ticks between snapshots.")
@click.option("--metrics", callback=_metric_list, default="fid50k_full", show_default=True,
              help="Metrics at each snapshot: NAME, A,B or none.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--cond", type=bool, default=False, show_default=True, help="Train conditional on the labels.")
@click.option("--mirror", type=bool, default=False, show_default=True, help="Add x-flipped images.")
@click.option("--subset", type=click.IntRange(min=1), default=None, help="Train on N random images.")
@click.option("--aug", type=click.Choice(["ada", "noaug", "fixed"]), default="ada", show_default=True)
@click.option("--p", type=click.FloatRange(0, 1), default=None, help="Augmentation probability of --aug fixed.")
@click.option("--target", type=click.FloatRange(0, 1), default=None, help="ADA target  [default: 0.6]")
@click.option("--augpipe", type=click.Choice(["blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc",
                                              "bgcf", "bgcfn", "bgcfnc"]), default="bgc", show_default=True)
@click.option("--resume", default=None, help="A run folder or snapshot to continue, or a network to fine-tune.")
@click.option("--freezed", type=click.IntRange(min=0), default=0, show_default=True, help="Freeze the first N layers of D.")
@click.option("--glr", type=click.FloatRange(min=0), default=None, help="G learning rate  [default: the preset's]")
@click.option("--dlr", type=click.FloatRange(min=0), default=None, help="D learning rate  [default: the preset's]")
@click.option("--map", "--map-depth", "map_", type=click.IntRange(min=1), default=None, help="Mapping network depth.")
@click.option("--cbase", type=click.IntRange(min=1), default=None, help="Capacity multiplier  [default: the preset's]")
@click.option("--cmax", type=click.IntRange(min=1), default=None, help="Max. feature maps  [default: 512]")
@click.option("--mbstd-group", type=click.IntRange(min=1), default=None, help="Minibatch-std group size.")
@click.option("--fp32", type=bool, default=False, show_default=True,
              help="No mixed precision (always so on a CPU).")
@click.option("--workers", type=click.IntRange(min=0), default=3, show_default=True, help="Data loading processes.")
@click.option("--desc", default=None, help="Text added to the run folder's name.")
@click.option("--device", default=None, help="cuda or cpu  [default: cuda when available]")
@click.option("-n", "--dry-run", is_flag=True, help="Print the resolved settings and exit.")
@provenance_options
@click.pass_context
def train(ctx, outdir, cfg, data, gpus, batch, batch_gpu, gamma, kimg, tick, snap, metrics, seed, cond, mirror,
          subset, aug, p, target, augpipe, resume, freezed, glr, dlr, map_, cbase, cmax, mbstd_group, fp32,
          workers, desc, device, dry_run, no_watermark, sign):
    """Train a StyleGAN2-ADA or StyleGAN3 network, NVIDIA's way: its presets, losses, lazy
    regularisation, ADA, G_ema and snapshots, on this toolkit's networks and ops.

    A run writes, in OUTDIR/NNNNN-desc/: training_options.json, reals.png, fakes*.png and
    network-snapshot-KIMG.stylegan (a network for `generate`, `project`, `edit`, and the full state
    to continue from) every --snap ticks, stats.jsonl (NVIDIA's keys), log.txt and metric-*.jsonl.
    The fakes grids are marked as synthetic, as every image the toolkit writes (see `stylegan verify`)."""
    from stylegan.distributed import rank_and_world
    from stylegan.training.snapshot import is_snapshot
    rank, world = rank_and_world()
    explicit = {name for name in ctx.params if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    continuing = resume is not None and (os.path.isdir(resume) or (data is None and is_snapshot(resume)))
    if continuing:
        fixed = sorted(explicit - _CONTINUE_FLAGS)
        if fixed:
            raise click.ClickException(f"{resume}: a continued run keeps its settings; --{fixed[0].rstrip('_').replace('_', '-')} "
                                       "cannot change (fine-tune it in a new run: --resume SNAPSHOT --data DATA)")
        run = _continue
    else:
        if data is None:
            raise click.ClickException(_no_data(resume))
        run = _start
    if gpus > 1 and world == 1 and not dry_run:
        if not continuing:
            _checked(lambda: _start(ctx.params, explicit, None, rank, dry_run=True, quiet=True))
        _launch(ctx, gpus)
        return
    stop = _StopOnInterrupt(rank) if not dry_run else None
    with stop or _nothing():
        result = _checked(lambda: run(ctx.params, explicit, stop, rank, dry_run))
    if result is not None and rank == 0:
        how = "stopped" if result.stopped else "done"
        where = f"; last snapshot {result.snapshot}" if result.snapshot else ""
        click.echo(f"{how} at kimg {result.cur_nimg / 1e3:g} in {result.run_dir}{where}", err=True)


def _no_data(resume) -> str:
    if resume is None:
        return "--data is required (a zip or folder of images), unless --resume continues a run"
    if os.path.exists(resume):
        return (f"{resume}: a network without training state, not a run's snapshot: fine-tune it in a new run "
                "with --data DATA")
    return f"{resume}: no such run folder or snapshot (a network to fine-tune needs --data DATA)"


def _checked(fn):
    """Library errors (bad data, options, files, a failed snapshot) as one line."""
    try:
        return fn()
    except click.ClickException:
        raise
    except (ValueError, RuntimeError, OSError) as e:
        from stylegan._errors import first_line
        raise click.ClickException(first_line(e)) from None


def _start(params, explicit, stop, rank, dry_run, quiet=False):
    import json
    from stylegan.training.config import TrainingOptions, resolve
    from stylegan.training.loop import open_data, train
    names = {f for f in TrainingOptions.__dataclass_fields__}
    given = {("map" if k == "map_" else k): v for k, v in params.items()}
    options = TrainingOptions(**{k: v for k, v in given.items() if k in names and v is not None})
    if dry_run:
        import torch
        device = params["device"] or ("cuda" if torch.cuda.is_available() else "cpu")
        from stylegan import load
        pretrained = load(options.resume) if options.resume is not None else None
        setup = resolve(options, open_data(options.data, use_labels=options.cond or None), device.split(":")[0],
                        pretrained)
        if not quiet:
            click.echo(json.dumps(setup.to_json(), indent=2))
        return None
    return train(options, device=params["device"], progress=_progress(rank), should_stop=stop,
                 provenance=_provenance(params))


def _progress(rank: int):
    """Tick lines (a bar on a terminal) from rank 0 alone; the others train in silence."""
    from .common import ProgressPrinter
    return ProgressPrinter(each=("train",)) if rank == 0 else None


def _continue(params, explicit, stop, rank, dry_run):
    from stylegan.training.loop import resume_training
    if dry_run:
        click.echo(f"would continue {params['resume']}")
        return None
    given = {k: (list(params[k]) if k == "metrics" else params[k]) if k in explicit else None
             for k in ("kimg", "snap", "tick", "metrics")}
    return resume_training(params["resume"], device=params["device"], data=params["data"], progress=_progress(rank),
                           should_stop=stop, provenance=_provenance(params), **given)


def _provenance(params):
    """How the fakes grids are marked; the loop fills in the facts (G_ema's digest, the run, the kimg)."""
    return base_provenance(None, params["no_watermark"], params["sign"])


class _StopOnInterrupt:
    """First Ctrl-C: finish the iteration, write a snapshot, stop. Second: abort."""

    def __init__(self, rank: int):
        self.rank, self.requested = rank, False

    def __call__(self) -> bool:
        return self.requested

    def _handler(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        if self.rank == 0:
            click.echo("\nstopping after this iteration with a snapshot (Ctrl-C again to abort now)", err=True)

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:            # not the main thread (e.g. inside a test runner): no handler
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _launch(ctx, gpus: int) -> None:
    """--gpus N: run this same command under torchrun with N processes."""
    args = []
    for param in ctx.command.params:
        name, value = param.name, ctx.params[param.name]
        if name in ("gpus", "dry_run") or value is None or ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        if getattr(param, "is_flag", False):
            args += [param.opts[0]] if value else []
        elif param.nargs > 1:
            args += [param.opts[0], *map(str, value)]
        else:
            args += [param.opts[0], (",".join(value) or "none") if isinstance(value, tuple) else str(value)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
           "-m", "scripts.cli", "train", *args]
    click.echo(f"launching {gpus} processes: torchrun --nproc-per-node {gpus} -m scripts.cli train {' '.join(args)}",
               err=True)
    code = subprocess.call(cmd)
    if code != 0:
        sys.exit(code)

