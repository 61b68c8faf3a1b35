"""`stylegan metrics`: FID, KID, precision/recall, PPL, IS and StyleGAN3's equivariance of a network."""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import warnings
from pathlib import Path

import click

from .common import ProgressPrinter, load_generator, resolve_device


def _metric_table() -> str:
    from stylegan.metrics.registry import describe
    return describe()


@click.command(epilog="""\b
Examples:
  stylegan metrics --network ffhq --data ~/datasets/ffhq-1024x1024.zip
  stylegan metrics --network snapshot.pkl --data ffhq.zip --metrics fid50k_full,kid50k_full,pr50k3_full,ppl2_wend
  stylegan metrics --network stylegan3-t-ffhq-1024 --metrics eqt50k_int,eqt50k_frac,eqr50k --gpus 8
  stylegan metrics --network snapshot.pkl --data ffhq_stats.npz --metrics fid50k_full
  stylegan metrics --network snapshot.pkl --data ffhq.zip --metrics fid50k_full,mypkg.metrics:kid10k
  torchrun --nproc-per-node 8 -m scripts.cli metrics --network snapshot.pkl --data ffhq.zip --device cuda

\b
Metrics (NVIDIA's names, counts and definitions):
""" + "\b\n" + _metric_table())
@click.option("--network", required=True, help="Model file, URL or model-zoo name (see `stylegan models`).")
@click.option("--data", default=None, metavar="ZIP|DIR|NPZ",
              help="Real images (a dataset zip or folder), or FID statistics (.npz with mu, sigma: pytorch-fid, "
                   "clean-fid, --save-stats). Not needed for PPL and EQ of unconditional networks.")
@click.option("--metrics", "names", default="fid50k_full", show_default=True, metavar="A,B,...",
              help="Comma-separated metric names (listed below), or one's own metric as module:attribute "
                   "(a stylegan.metrics.Metric; importing the module runs it).")
@click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes to shard over, one per GPU (or torchrun's, when launched by torchrun).")
@click.option("--device", default=None, help="cpu, cuda or mps [default: cuda when available].")
@click.option("--inception", default=None, metavar="SOURCE",
              help="Inception detector: registry name, path or URL [default: inception-2015-12-05, NVIDIA's]; "
                   "pytorch-fid's weights: pt-inception-2015-12-05.")
@click.option("--vgg16", default=None, metavar="SOURCE",
              help="VGG16 detector for PR and PPL [default: vgg16, NVIDIA's].")
@click.option("--trust-code", is_flag=True,
              help="Run TorchScript detector files as themselves. This EXECUTES the code inside the file: only "
                   "for files you trust. Without it only their tensors are read, into modules of ours.")
@click.option("--num-gen", type=click.IntRange(min=2), default=None,
              help="Generate this many images/samples instead of 50000: a quick look, not comparable with papers.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every metric's random stream.")
@click.option("--batch", "batch_size", type=click.IntRange(min=4), default=64, show_default=True,
              help="Images per detector batch (a multiple of 4).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True,
              help="Processes decoding the data set.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Append each result to RUN_DIR/metric-NAME.jsonl [default: the network's training-run folder, "
                   "when it has training_options.json].")
@click.option("--save-stats", type=click.Path(dir_okay=False), default=None,
              help="Also write the data set's FID statistics (mu, sigma) to this .npz.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where downloads and data-set statistics are kept "
                   "[default: $STYLEGAN_CACHE, else ~/.cache/stylegan].")
@click.option("--no-cache", is_flag=True, help="Do not read or write cached data-set statistics.")
def metrics(network, data, names, gpus, device, inception, vgg16, trust_code, num_gen, seed, batch_size, workers,
            run_dir, save_stats, cache_dir, no_cache):
    """Measure a generator as NVIDIA's calc_metrics.py does: one JSON line per metric on stdout (the
    line NVIDIA's metric-NAME.jsonl holds), then a table on stderr.

    The data set's statistics are cached (keyed by the data, the detector file and the count), so a
    second run on the same data only generates. Detectors are loaded without running any code unless
    --trust-code is given. Under torchrun, or with --gpus N, every process computes a share."""
    from stylegan.distributed import rank_and_world
    from stylegan.metrics.registry import parse
    try:
        parse(names)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if batch_size % 4:
        raise click.BadParameter("must be a multiple of 4 (images per generator call)", param_hint="--batch")
    device = device or ("cuda" if _cuda() else "cpu")
    args = dict(network=network, data=data, names=names, device=device, inception=inception, vgg16=vgg16,
                trust_code=trust_code, num_gen=num_gen, seed=seed, batch_size=batch_size, workers=workers,
                run_dir=run_dir, save_stats=save_stats, cache_dir=cache_dir, no_cache=no_cache)
    if gpus > 1 and rank_and_world()[1] == 1:
        _spawn(gpus, args)
    else:
        _run(**args)


def _run(network, data, names, device, inception, vgg16, trust_code, num_gen, seed, batch_size, workers, run_dir,
         save_stats, cache_dir, no_cache):
    from stylegan import distributed
    from stylegan.metrics import MetricNotice, compute
    rank, world = distributed.rank_and_world()
    dev = resolve_device(device)
    distributed.init("gloo" if dev.type == "cpu" else None)
    G = load_generator(network, dev)
    run_dir = run_dir or _training_run_dir(network)
    say = (lambda text: click.echo(text, err=True)) if rank == 0 else (lambda text: None)
    with warnings.catch_warnings():
        warnings.simplefilter("always", MetricNotice)
        warnings.showwarning = lambda message, category, *a, **k: say(f"note: {message}")
        try:
            results = compute(G, data, names, device=dev, progress=ProgressPrinter() if rank == 0 else None,
                              rank=rank, world_size=world, detectors=dict(inception=inception, vgg16=vgg16),
                              trust_code=trust_code, seed=seed, num_gen=num_gen, batch_size=batch_size,
                              num_workers=workers, cache=not no_cache, cache_dir=cache_dir)
            if save_stats and rank == 0:
                _save_stats(save_stats, G, data, dev, inception, trust_code, not no_cache, cache_dir, batch_size,
                            workers)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
    if rank != 0:
        return
    snapshot = os.path.relpath(network, run_dir) if run_dir and Path(network).is_file() else network
    for r in results:
        click.echo(r.jsonl(snapshot=snapshot))
        if run_dir:
            r.append_to(run_dir, snapshot=snapshot)
    say(_table(results))


def _table(results) -> str:
    from stylegan.progress import format_time
    rows = [(k, f"{v:.6g}", format_time(r.seconds)) for r in results for k, v in r.results.items()]
    width = max(len(k) for k, _, _ in rows)
    return "\n".join(f"{k:<{width}s}  {v:>12s}  {t}" for k, v, t in rows)


def _save_stats(path, G, data, device, inception, trust_code, cache, cache_dir, batch_size, workers) -> None:
    from stylegan.metrics import data_statistics, write_statistics
    mu, sigma = data_statistics(data, resolution=G.img_resolution, detector=inception, device=device,
                                trust_code=trust_code, batch_size=batch_size, num_workers=workers, cache=cache,
                                cache_dir=cache_dir, progress=ProgressPrinter())
    write_statistics(path, mu, sigma)
    click.echo(f"FID statistics of {data} ({G.img_resolution}x{G.img_resolution}) written to {path}", err=True)


def _training_run_dir(network: str):
    """NVIDIA's rule: a snapshot beside training_options.json belongs to that run."""
    folder = Path(network).parent
    return str(folder) if Path(network).is_file() and (folder / "training_options.json").is_file() else None


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def _spawn(gpus: int, args: dict) -> None:
    """N processes on this machine, wired as torchrun would wire them (env:// rendezvous)."""
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(gpus, port, args), nprocs=gpus, join=True)


def _worker(rank: int, world: int, port: int, args: dict) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    try:
        # A spawned process starts without the group's progress sink: rank 0 shows downloads again.
        with ProgressPrinter() if rank == 0 else contextlib.nullcontext():
            _run(**args)
    except click.ClickException as e:
        if rank == 0:
            e.show()
        sys.exit(1)
