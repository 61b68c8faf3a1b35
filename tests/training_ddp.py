"""Helpers of test_training_ddp: a tiny StyleGAN2 trainer for one of `world` ranks, a random source that
records one rank's draws, and one that hands rank r its half of every per-image draw of that recording.

Why halves make the two runs the same arithmetic: every draw of a step is either per image (dim 0 is
the batch: z, style-mixing latents, noise, augment parameters) or one value for the whole call (the
style-mixing cutoff, 0-d). NVIDIA's loop draws z for the whole global batch on every rank and each
rank uses the first batch/world rows of each phase's chunk, so rank r is handed its images' rows there."""
from __future__ import annotations

import os

import numpy as np
import torch

from stylegan.training.config import TrainingOptions, resolve
from stylegan.training.loop import _build
from stylegan.training.augment import AugmentPipe
from stylegan.training.loss import StyleGAN2Loss
from stylegan.training.rng import RandomSource, TorchRandom
from stylegan.training.trainer import Trainer, make_phases

BATCH = 4
ITERATIONS = 2


class Unlabelled:
    def __len__(self):
        return 16

    def get_label(self, idx):
        return np.zeros([0], np.float32)


class _FakeData:
    """What `resolve` asks of a data set."""
    resolution, num_channels, label_dim, has_labels, path = 32, 3, 0, False, "blobs"

    def __len__(self):
        return 16


def tiny_trainer(world: int, rank: int) -> Trainer:
    """StyleGAN2 32 px, batch 4 in one pass per rank, ADA's bgc pipe at p 0.5, R1 every iteration's first;
    minibatch-std over single images and no path length regularisation: both mix images of a pass
    (groups, the pl batch's first rows), which differ between one pass of 4 and two of 2."""
    options = TrainingOptions(data="-", outdir="-", cfg="stylegan2", batch=BATCH, batch_gpu=BATCH // world, cbase=256,
                              cmax=16, map=2, mbstd_group=1, gpus=world, aug="fixed", p=0.5, metrics=())
    setup = resolve(options, _FakeData(), "cpu")
    setup.loss_kwargs.update(pl_weight=0)
    G, D, G_ema = _build(setup, torch.device("cpu"), rank=0, world=1)       # every rank the same start
    augment_pipe = AugmentPipe(**setup.augment_kwargs).train().requires_grad_(False)
    augment_pipe.p.fill_(setup.augment_p)
    loss = StyleGAN2Loss(G, D, augment_pipe, **setup.loss_kwargs, rules=setup.rules)
    phases = make_phases(G, D, setup.G_opt, setup.D_opt, setup.G_reg_interval, setup.D_reg_interval)
    return Trainer(G, D, G_ema, loss, phases, batch_size=setup.batch_size, batch_gpu=setup.batch_gpu,
                   ema_kimg=setup.ema_kimg, ema_rampup=setup.ema_rampup, rank=rank, world_size=world)


def reals() -> torch.Tensor:
    return torch.randint(0, 256, [ITERATIONS, BATCH, 3, 32, 32], generator=torch.Generator().manual_seed(5),
                         dtype=torch.uint8)


def train(trainer: Trainer, rng: RandomSource, rank: int = 0, world: int = 1) -> dict:
    """ITERATIONS steps on this rank's share of reals(); the networks and Adam's first moments (with
    beta1 = 0: the last averaged gradient) afterwards."""
    share = BATCH // world
    for images in reals():
        trainer.step(images[rank * share:(rank + 1) * share], torch.zeros([share, 0]), rng, Unlabelled())
    out = {f"{k}/{n}": t.detach().clone() for k, m in (("G", trainer.G), ("D", trainer.D), ("G_ema", trainer.G_ema))
           for n, t in m.state_dict().items() if isinstance(t, torch.Tensor)}
    for phase in trainer.phases:
        for n, p in phase.module.named_parameters():
            state = phase.opt.state.get(p, {})
            if "exp_avg" in state:
                out[f"grad/{phase.name[0]}/{n}"] = state["exp_avg"].clone()
    return out


class Recorder(RandomSource):
    def __init__(self, seed: int):
        self.source, self.draws, self.labels = TorchRandom(seed), [], []

    def _keep(self, kind, t):
        self.draws.append((kind, t.clone()))
        return t

    def randn(self, shape):
        return self._keep("randn", self.source.randn(shape))

    def rand(self, shape):
        return self._keep("rand", self.source.rand(shape))

    def randint(self, low, high):
        return self._keep("randint", self.source.randint(low, high))

    def label_indices(self, count, high):
        got = self.source.label_indices(count, high)
        self.labels.append(got)
        return got


class Halves(RandomSource):
    """Rank `rank`'s share of a one-rank recording, draw by draw (kinds checked)."""

    def __init__(self, draws, labels, rank: int, world: int, phases: int, z_dim: int):
        self.draws, self.labels, self.rank, self.world = list(draws), list(labels), rank, world
        self.phases, self.z_dim = phases, z_dim

    def _next(self, kind, shape):
        have, t = self.draws.pop(0)
        assert have == kind, (have, kind)
        shape = list(shape)
        if list(t.shape) == [self.phases * BATCH, self.z_dim] == shape:     # the step's z
            share = BATCH // self.world
            chunks = t.view(self.phases, BATCH, self.z_dim).clone()
            chunks[:, :share] = chunks[:, self.rank * share:(self.rank + 1) * share].clone()
            return chunks.view(shape)
        if t.ndim == 0 or list(t.shape) == shape:
            assert t.ndim == 0, (list(t.shape), shape)
            return t
        share = shape[0]
        assert t.shape[0] == share * self.world and list(t.shape[1:]) == shape[1:], (list(t.shape), shape)
        return t[self.rank * share:(self.rank + 1) * share]

    def randn(self, shape):
        return self._next("randn", shape)

    def rand(self, shape):
        return self._next("rand", shape)

    def randint(self, low, high):
        return self._next("randint", [])

    def label_indices(self, count, high):
        return self.labels.pop(0)


def worker(rank: int, world: int, draws, labels, out: str, rendezvous: str) -> None:
    torch.set_num_threads(1)
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        trainer = tiny_trainer(world, rank)
        rng = Halves(draws, labels, rank, world, len(trainer.phases), trainer.G.z_dim)
        result = train(trainer, rng, rank, world)
        assert not rng.draws, f"{len(rng.draws)} draws left"
        torch.save(result, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
