"""The training story: NVIDIA's loop (ticks, snapshots, stats.jsonl, metrics) around `Trainer.step`.

    train(TrainingOptions(data="faces.zip", outdir="runs", cfg="auto", kimg=1000))   # a new run
    train(TrainingOptions(data="faces.zip", resume="stylegan2-ffhq-256", ...))       # fine-tune a network
    resume_training("runs/00003-.../")                                               # continue a run

A run folder holds training_options.json (the resolved setup), reals.png, fakes_init.png,
fakes<kimg>.png and network-snapshot-<kimg>.stylegan every `snap` ticks, stats.jsonl (NVIDIA's keys,
one line per tick), log.txt (the tick lines) and metric-<name>.jsonl. Only rank 0 writes.

A snapshot holds everything the next iteration depends on, so continuing from it on the same number
of processes gives the run that was never stopped, bit for bit on the CPU. `should_stop` (e.g. Ctrl-C
in the command line) ends the run at the next iteration with a snapshot. The library prints nothing:
each tick is a `Progress` event (stage 'train', done = images shown) with the tick's kimg, sec/kimg,
memory and augment p; log.txt gets NVIDIA's full tick line.

The image grids carry provenance like every image the toolkit writes: fakes*.png are G_ema's pixels
(synthetic, its digest), reals.png the data set's (a photo grid: nothing claimed). Metrics go through
one seam, `metrics_fn` (`stylegan.metrics.compute` unless given): it is called at every snapshot
with G_ema and the data set, rank by rank, and its results land in metric-<name>.jsonl and stats.jsonl.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .. import distributed
from .._errors import first_line
from ..io.files import atomic_output, ensure_writable_dir, sweep_stale_temps
from ..data import ImageDataset
from ..loaders import load
from ..networks import create_model
from ..io.image_files import save_image
from ..progress import Progress, ProgressFn, emit, format_time
from ..provenance import Provenance
from .augment import AugmentPipe
from .config import TrainingOptions, TrainingSetup, resolve
from .data import InfiniteSampler, Loader, grid_indices, grid_size, image_grid
from .loss import StyleGAN2Loss
from .resume import copy_pretrained
from .rng import TorchRandom
from .snapshot import is_snapshot, latest_snapshot, read_state, save_snapshot, snapshot_name
from .stats import Stats
from .trainer import Trainer, make_phases


class TrainingError(RuntimeError):
    """A run that cannot go on (a snapshot that cannot be written, out of memory): one line, with the way out."""


# stylegan.metrics.compute's signature: (G, data, names, *, device, progress, rank, world_size) -> results,
# each with .name, .results {key: value}, .jsonl(snapshot=name).
MetricsFn = Callable[..., list]


@dataclass
class TrainingResult:
    run_dir: Path
    cur_nimg: int
    snapshot: Optional[Path] = None                   # the last snapshot written
    stopped: bool = False                             # ended by should_stop before total_kimg
    snapshots: list = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Entry points


def train(options: TrainingOptions, *, device: Optional[str] = None, progress: Optional[ProgressFn] = None,
          should_stop: Optional[Callable[[], bool]] = None, provenance: Optional[Provenance] = None,
          metrics_fn: Optional[MetricsFn] = None) -> TrainingResult:
    """A new run in a new folder under `options.outdir`; `options.resume` names a network to
    fine-tune (any format `stylegan.load` reads, or a zoo name). To continue a run, `resume_training`.
    `provenance`: how to mark the fakes grids (watermark, signer; the facts are filled in here);
    `metrics_fn`: what computes `options.metrics` (default `stylegan.metrics.compute`)."""
    rank, world = distributed.rank_and_world()
    device = _device(device)
    if world > 1 and world != options.gpus:
        options = dataclasses.replace(options, gpus=world)      # under torchrun the processes are the GPUs
    dataset = open_data(options.data, use_labels=options.cond or None)
    pretrained = load(options.resume) if options.resume is not None else None
    setup = resolve(options, dataset, device.type, pretrained)
    run_dir = _new_run_dir(Path(options.outdir), setup.desc, rank, world)
    if rank == 0:
        (run_dir / "training_options.json").write_text(json.dumps(setup.to_json(), indent=2))
    return _run(setup, run_dir, device, progress, should_stop, provenance, metrics_fn, state=None,
                pretrained=pretrained)


def resume_training(path: str | os.PathLike, *, device: Optional[str] = None, kimg: Optional[float] = None,
                    snap: Optional[int] = None, tick: Optional[float] = None, metrics: Optional[list] = None,
                    data: Optional[str] = None, progress: Optional[ProgressFn] = None,
                    should_stop: Optional[Callable[[], bool]] = None, provenance: Optional[Provenance] = None,
                    metrics_fn: Optional[MetricsFn] = None) -> TrainingResult:
    """Continue a run from its newest snapshot (`path` a run folder) or from a given snapshot file,
    in that snapshot's folder; `kimg` etc. change the run's length and schedule, `data` the data set's
    path; the rest as for `train`."""
    _device(device)
    path = Path(path)
    file = latest_snapshot(path) if path.is_dir() else path
    if file is None:
        raise ValueError(f"{path}: no network-snapshot-*.stylegan in this folder to resume from")
    if not file.is_file():
        raise ValueError(f"{file}: no such run folder or snapshot")
    state = read_state(file) if is_snapshot(file) else None
    if state is None:
        raise ValueError(f"{file}: a network without training state, not a run's snapshot; fine-tune it in a new "
                         "run (TrainingOptions.resume)")
    setup = TrainingSetup.from_json(state["setup"])
    for name, value in (("total_kimg", kimg), ("snapshot_ticks", snap), ("kimg_per_tick", tick), ("metrics", metrics)):
        if value is not None:
            setattr(setup, name, list(value) if name == "metrics" else value)
    if data is not None:
        setup.data["path"] = str(data)
    state["file"] = str(file)
    return _run(setup, file.parent, _device(device), progress, should_stop, provenance, metrics_fn, state=state)


def open_data(path: str | os.PathLike, **kwargs) -> ImageDataset:
    """The training set, as ImageDataset reads it (kwargs with value None are left out)."""
    return ImageDataset(path, **{k: v for k, v in kwargs.items() if v is not None})


def _device(device: Optional[str]) -> torch.device:
    """The training device (one GPU per torchrun rank), its process group joined (NCCL on GPUs, gloo on
    the CPU) and NVIDIA's GPU settings made: cuDNN autotuning on, TF32 off (it costs accuracy)."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    distributed.init("nccl" if device.type == "cuda" else "gloo")
    return device


def _new_run_dir(outdir: Path, desc: str, rank: int, world: int) -> Path:
    """outdir/NNNNN-desc with the next free number (NVIDIA's naming); rank 0 creates it, the others learn its name."""
    name = None
    if rank == 0:
        ensure_writable_dir(outdir)
        ids = [int(m.group()) for p in outdir.iterdir() if p.is_dir() and (m := re.match(r"^\d+", p.name))]
        name = f"{max(ids, default=-1) + 1:05d}-{desc}"
        (outdir / name).mkdir()
    if world > 1:
        import torch.distributed as dist
        box = [name]
        dist.broadcast_object_list(box, src=0)
        name = box[0]
    return outdir / name


# ----------------------------------------------------------------------------------------------
# The run


def _build(setup: TrainingSetup, device: torch.device, rank: int, world: int):
    """G, D, G_ema as NVIDIA's loop builds them: seeded per rank, then rank 0's broadcast."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(setup.random_seed * world + rank)
        G = create_model(setup.arch, **copy.deepcopy(setup.G_kwargs))
        D = create_model("stylegan2_discriminator", **copy.deepcopy(setup.D_kwargs))
    G.train().requires_grad_(False)
    D.train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    return G, D, G_ema


def _run(setup: TrainingSetup, run_dir: Path, device: torch.device, progress, should_stop, provenance, metrics_fn,
         state, pretrained=None) -> TrainingResult:
    rank, world = distributed.rank_and_world()
    data_kwargs = {k: v for k, v in setup.data.items() if k != "path"}
    dataset = open_data(setup.data["path"], **data_kwargs)
    if state is not None and state.get("data_digest") not in (None, dataset.digest()):
        raise ValueError(f"{setup.data['path']}: not the data set this run was trained on (its digest differs); "
                         "pass the run's data set with --data")
    G, D, G_ema = _build(setup, device, rank, world)
    if state is not None:
        _load_networks(state["file"], G, D, G_ema)
    elif pretrained is not None and rank == 0:
        copy_pretrained(pretrained, setup.resume, G, D, G_ema)
    G, D, G_ema = (m.to(device) for m in (G, D, G_ema))
    if world > 1:
        import torch.distributed as dist
        for module in (G, D, G_ema):
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    augment_pipe = None
    if setup.augment_kwargs is not None and (setup.augment_p > 0 or setup.ada_target is not None):
        augment_pipe = AugmentPipe(**setup.augment_kwargs).train().requires_grad_(False).to(device)
        augment_pipe.p.fill_(setup.augment_p)
    stats = Stats(rank)
    loss = StyleGAN2Loss(G, D, augment_pipe, **setup.loss_kwargs, rules=setup.rules, device=device)
    phases = make_phases(G, D, setup.G_opt, setup.D_opt, setup.G_reg_interval, setup.D_reg_interval)
    trainer = Trainer(G, D, G_ema, loss, phases, batch_size=setup.batch_size, batch_gpu=setup.batch_gpu,
                      ema_kimg=setup.ema_kimg, ema_rampup=setup.ema_rampup, ada_target=setup.ada_target,
                      ada_interval=setup.ada_interval, ada_kimg=setup.ada_kimg, rank=rank, world_size=world,
                      stats=stats)
    rng = TorchRandom(setup.random_seed * world + rank, device)
    sampler = InfiniteSampler(len(dataset), rank=rank, num_replicas=world, seed=setup.random_seed)
    loader = Loader(dataset, sampler, setup.batch_size // world, workers=setup.extra.get("workers", 0),
                    pin_memory=device.type == "cuda")
    loop = _Loop(setup, run_dir, device, rank, world, trainer, rng, loader, dataset, progress, should_stop,
                 provenance or Provenance(), metrics_fn)
    if state is not None:
        loop.restore(state)
    return loop.run()


def _load_networks(file: str, G, D, G_ema) -> None:
    from ..loaders import native
    specs, _ = native.read(file)
    for key, module in (("G", G), ("D", D), ("G_ema", G_ema)):
        module.load_state_dict(specs[key].tensors, strict=True)


class _Loop:
    def __init__(self, setup, run_dir, device, rank, world, trainer, rng, loader, dataset, progress, should_stop,
                 provenance, metrics_fn):
        self.setup, self.run_dir, self.device, self.rank, self.world = setup, run_dir, device, rank, world
        self.trainer, self.rng, self.loader, self.dataset = trainer, rng, loader, dataset
        self.progress, self.should_stop = progress, should_stop
        self.provenance = provenance.with_(operation="train", details={"run": run_dir.name})
        self.metrics_fn = metrics_fn
        self.stats = trainer.stats
        self.collector = self.stats.collector(".*")
        self.cur_tick = 0
        self.elapsed = 0.0               # seconds of earlier sessions of this run
        self.stats_lines = 0             # lines of stats.jsonl that belong to the run so far
        self.snapshots: list[Path] = []
        self.fresh = True
        self.metrics_note_given = False

    # --- resuming ----------------------------------------------------------------------------

    def restore(self, state: dict) -> None:
        self.trainer.load_state_dict(state["trainer"])
        ranks = state["ranks"]
        if len(ranks) == self.world:
            self.rng.load_state_dict(ranks[self.rank]["rng"])
            self.loader.load_state_dict(ranks[self.rank]["sampler"])
        else:
            # Another process count: the streams cannot continue; restart them, seeded by the position.
            self.rng = TorchRandom(self.setup.random_seed * self.world + self.rank + self.trainer.cur_nimg, self.device)
        self.cur_tick, self.elapsed = int(state["cur_tick"]), float(state["elapsed"])
        self.stats_lines = int(state["stats_lines"])
        self.fresh = False
        if self.rank == 0:
            _truncate_lines(self.run_dir / "stats.jsonl", self.stats_lines)
            self._log(f"Resuming from {Path(state['file']).name} at kimg {self.trainer.cur_nimg / 1e3:.1f}")

    def state(self, snapshot_file: str) -> dict:
        ranks = [{"rng": self.rng.state_dict(), "sampler": self.loader.state_dict()}]
        if self.world > 1:
            import torch.distributed as dist
            gathered: list = [None] * self.world
            dist.all_gather_object(gathered, ranks[0])
            ranks = gathered
        return {"setup": self.setup.to_json(), "trainer": self.trainer.state_dict(), "ranks": ranks,
                "cur_tick": self.cur_tick + 1, "elapsed": self.elapsed + time.time() - self.start_time,
                "stats_lines": self.stats_lines, "data_digest": self.digest, "snapshot": snapshot_file}

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> TrainingResult:
        s, trainer = self.setup, self.trainer
        self.start_time = time.time()
        self.digest = self.dataset.digest()
        if self.rank == 0:
            sweep_stale_temps(self.run_dir)
            self._setup_grid()
        tick_start_nimg, tick_start_time = trainer.cur_nimg, time.time()
        maintenance = tick_start_time - self.start_time
        stopped = False
        last = None
        emit(self.progress, Progress("train", trainer.cur_nimg, int(s.total_kimg * 1000), item=str(self.run_dir)))
        while True:
            images, labels = next(self.loader)
            try:
                trainer.step(images, labels, self.rng, self.dataset)
            except torch.cuda.OutOfMemoryError:
                raise TrainingError(f"out of GPU memory with {s.batch_gpu} images per pass: lower --batch-gpu "
                                    "(gradients then accumulate over more passes) or train a smaller --cfg") from None
            done = trainer.cur_nimg >= s.total_kimg * 1000
            if not done and self._stop_requested():
                done = stopped = True
            if not done and self.cur_tick != 0 and trainer.cur_nimg < tick_start_nimg + s.kimg_per_tick * 1000:
                continue
            tick_end_time = time.time()
            fields = self._report_tick(tick_start_nimg, tick_start_time, tick_end_time, maintenance)
            snapshot_now = done or self.cur_tick % s.snapshot_ticks == 0
            self.collector.update(self.world, self.device if self.device.type == "cuda" else None)
            if self.rank == 0:
                self._write_stats(tick_end_time)
            if snapshot_now:
                last = self._snapshot(tick_end_time)
            emit(self.progress, Progress("train", trainer.cur_nimg, int(s.total_kimg * 1000), stats=_shown(fields),
                                         item=str(last) if snapshot_now and last else None,
                                         seconds=self.elapsed + tick_end_time - self.start_time))
            self.cur_tick += 1
            tick_start_nimg, tick_start_time = trainer.cur_nimg, time.time()
            maintenance = tick_start_time - tick_end_time
            if done:
                break
        return TrainingResult(self.run_dir, trainer.cur_nimg, last, stopped, self.snapshots)

    def _stop_requested(self) -> bool:
        stop = bool(self.should_stop()) if self.should_stop is not None else False
        if self.world > 1:
            import torch.distributed as dist
            flag = torch.tensor([float(stop)], device=self.device if self.device.type == "cuda" else "cpu")
            dist.all_reduce(flag)
            stop = bool(flag.item() > 0)
        return stop

    def _report_tick(self, tick_start_nimg, tick_start_time, tick_end_time, maintenance) -> dict:
        t, r0 = self.trainer, self.stats.report0
        total = self.elapsed + tick_end_time - self.start_time
        images = max(t.cur_nimg - tick_start_nimg, 1)
        fields = {"tick": self.cur_tick, "kimg": t.cur_nimg / 1e3, "time": total,
                  "sec/tick": tick_end_time - tick_start_time,
                  "sec/kimg": (tick_end_time - tick_start_time) / images * 1e3, "maintenance": maintenance,
                  "cpumem": _cpu_mem_gb(), "gpumem": 0.0, "reserved": 0.0,
                  "augment": float(t.augment_pipe.p) if t.augment_pipe is not None else 0.0}
        if self.device.type == "cuda":
            fields["gpumem"] = torch.cuda.max_memory_allocated(self.device) / 2 ** 30
            fields["reserved"] = torch.cuda.max_memory_reserved(self.device) / 2 ** 30
            torch.cuda.reset_peak_memory_stats(self.device)
        for phase, seconds in t.phase_seconds().items():
            r0(f"Timing/{phase}", seconds * 1e3)
        for key, name in (("tick", "Progress/tick"), ("kimg", "Progress/kimg"), ("time", "Timing/total_sec"),
                          ("sec/tick", "Timing/sec_per_tick"), ("sec/kimg", "Timing/sec_per_kimg"),
                          ("maintenance", "Timing/maintenance_sec"), ("cpumem", "Resources/cpu_mem_gb"),
                          ("gpumem", "Resources/peak_gpu_mem_gb"), ("reserved", "Resources/peak_gpu_mem_reserved_gb"),
                          ("augment", "Progress/augment")):
            r0(name, fields[key])
        r0("Timing/total_hours", total / 3600)
        r0("Timing/total_days", total / 86400)
        if self.rank == 0:
            self._log(tick_line(fields))
        return fields

    # --- outputs (rank 0) --------------------------------------------------------------------

    def _log(self, line: str) -> None:
        with open(self.run_dir / "log.txt", "a") as f:
            f.write(line + "\n")

    def _write_stats(self, timestamp: float) -> None:
        entry = dict(self.collector.as_dict(), timestamp=timestamp)
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.stats_lines += 1
        _tensorboard(self, entry)

    def _setup_grid(self) -> None:
        small = self.device.type != "cuda"
        self.grid = grid_size((self.dataset.resolution, self.dataset.resolution), small)
        idx = grid_indices(self.dataset, self.grid)
        items = [self.dataset[i] for i in idx]
        gen = torch.Generator().manual_seed(self.setup.random_seed)
        self.grid_z = torch.randn([len(idx), self.trainer.G.z_dim], generator=gen)
        self.grid_c = torch.from_numpy(np.stack([label for _, label in items]))
        if self.fresh:
            reals = np.stack([img for img, _ in items]).transpose(0, 3, 1, 2)
            save_image(image_grid(reals, self.grid, drange=(0, 255)), self.run_dir / "reals.png",
                       self.provenance.with_(kind="photo", details={"grid": "reals"}), compress_level=1)
            self._save_fakes("fakes_init.png")

    @torch.no_grad()
    def _save_fakes(self, name: str) -> None:
        """G_ema's images of the grid's fixed latents, marked as its pixels (the digest of the G_ema
        that the snapshot written beside it holds)."""
        from torch_utils.misc import network_digest
        G, b = self.trainer.G_ema, self.setup.batch_gpu
        out = [G(z.to(self.device), c.to(self.device), noise_mode="const").cpu()
               for z, c in zip(self.grid_z.split(b), self.grid_c.split(b))]
        made = self.provenance.with_(kind="synthetic", network=network_digest(G), noise_mode="const",
                                     details={"grid": "fakes", "kimg": self.trainer.cur_nimg / 1e3})
        save_image(image_grid(torch.cat(out).numpy(), self.grid), self.run_dir / name, made, compress_level=1)

    def _snapshot(self, now: float) -> Optional[Path]:
        t = self.trainer
        name = snapshot_name(t.cur_nimg)
        if self.world > 1:
            _check_ranks_agree(t)
        state = self.state(name)                  # every rank takes part in gathering the random states
        path = None
        if self.rank == 0:
            path = self.run_dir / name
            previous = self.snapshots[-1] if self.snapshots else latest_snapshot(self.run_dir)
            try:
                self._save_fakes(f"fakes{t.cur_nimg // 1000:06d}.png")
                meta = {"training_set_kwargs": dict(self.setup.data, class_name="training.dataset.ImageFolderDataset"),
                        "augment_pipe_kwargs": self.setup.augment_kwargs, "cur_nimg": t.cur_nimg}
                save_snapshot(path, {"G": t.G, "D": t.D, "G_ema": t.G_ema}, state, meta)
            except OSError as e:
                kept = f"; {previous.name} is intact" if previous is not None else ""
                raise TrainingError(f"cannot write {path} ({e.strerror or first_line(e)}){kept}") from None
            self.snapshots.append(path)
        self._metrics(name)
        return path

    def _metrics(self, snapshot_name: str) -> None:
        names = list(self.setup.metrics)
        if not names:
            return
        compute = self.metrics_fn or _library_metrics()
        if compute is None:
            if self.rank == 0 and not self.metrics_note_given:
                note = f"Metrics {', '.join(names)} skipped: this installation has no stylegan.metrics"
                self._log(note)
                emit(self.progress, Progress("metrics", 0, item=note))
                self.metrics_note_given = True
            return
        try:
            results = compute(self.trainer.G_ema, self.dataset, names, device=self.device,
                              progress=self.progress, rank=self.rank, world_size=self.world)
        except ValueError as e:       # an unknown name, a detector that cannot be had: the run's settings are wrong
            raise TrainingError(f"metrics {', '.join(names)}: {first_line(e)} (the snapshot is written; "
                                "continue with --resume RUN --metrics none to train without them)") from None
        if self.rank == 0:
            for r in results:
                with open(self.run_dir / f"metric-{r.name}.jsonl", "a") as f:
                    f.write(r.jsonl(snapshot=snapshot_name).rstrip("\n") + "\n")
                # As NVIDIA's loop: the values go to metric-<name>.jsonl and TensorBoard, not stats.jsonl.
                _tensorboard(self, {f"Metrics/{key}": value for key, value in r.results.items()})


def _library_metrics() -> Optional[MetricsFn]:
    """stylegan.metrics.compute, or None where this installation lacks the metrics library."""
    try:
        from ..metrics import compute
    except ImportError:
        return None
    return compute


def _check_ranks_agree(trainer: Trainer) -> None:
    """NVIDIA's check at every snapshot: every rank holds the same weights (running means aside)."""
    import torch.distributed as dist
    for net, module in (("G", trainer.G), ("D", trainer.D), ("G_ema", trainer.G_ema)):
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if re.fullmatch(r".*\.[^.]+_(avg|ema)", name):
                continue
            mine = torch.nan_to_num(t.detach())
            other = mine.clone()
            dist.broadcast(other, src=0)
            if not torch.equal(mine, other):
                raise TrainingError(f"rank {dist.get_rank()} holds another {net}.{name} than rank 0: the processes "
                                    "diverged (a non-deterministic kernel, or ranks fed different settings)")


def _shown(f: dict) -> dict:
    """A tick's numbers worth showing as it goes (log.txt has NVIDIA's whole tick line)."""
    memory = ("gpumem", f["gpumem"]) if f["gpumem"] > 0 else ("cpumem", f["cpumem"])
    return {"tick": f["tick"], "kimg": round(f["kimg"], 3), "sec/kimg": f["sec/kimg"], memory[0]: memory[1],
            "augment": f["augment"]}


def tick_line(f: dict) -> str:
    """NVIDIA's status line of a tick from its fields."""
    return (f"tick {f['tick']:<5d} kimg {f['kimg']:<8.1f} time {format_time(f['time']):<12s} "
            f"sec/tick {f['sec/tick']:<7.1f} sec/kimg {f['sec/kimg']:<7.2f} maintenance {f['maintenance']:<6.1f} "
            f"cpumem {f['cpumem']:<6.2f} gpumem {f['gpumem']:<6.2f} reserved {f['reserved']:<6.2f} "
            f"augment {f['augment']:.3f}")


def _cpu_mem_gb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30
    except (OSError, ValueError, IndexError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def _truncate_lines(path: Path, keep: int) -> None:
    """Drop the lines a killed run wrote after its last snapshot."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if len(lines) > keep:
        with atomic_output(path) as tmp:
            Path(tmp).write_text("".join(lines[:keep]))


def _tensorboard(loop: _Loop, entry: dict) -> None:
    """TensorBoard scalars beside stats.jsonl, when the tensorboard package is installed: a stats
    entry's means, or plain numbers (metrics)."""
    if not hasattr(loop, "_tb"):
        try:
            from torch.utils.tensorboard import SummaryWriter
            loop._tb = SummaryWriter(str(loop.run_dir))
        except ImportError:
            loop._tb = None
    if loop._tb is None:
        return
    step = int(loop.trainer.cur_nimg / 1e3)
    for name, value in entry.items():
        if isinstance(value, dict):
            loop._tb.add_scalar(name, value["mean"], global_step=step)
        elif isinstance(value, (int, float)):
            loop._tb.add_scalar(name, value, global_step=step)
    loop._tb.flush()
