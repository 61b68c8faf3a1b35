"""One training iteration, NVIDIA's arithmetic: phases, lazy regularisation, Adam, G_ema, ADA.

Per iteration (`Trainer.step`):

  1. one z per image of every phase (`randn([len(phases) * batch, z_dim])`), then the labels of the
     fakes (random data set items' labels);
  2. each phase whose interval divides the iteration: zero the grads, accumulate them over rounds of
     `batch_gpu` images, average them over the ranks, replace NaN/inf (0, +-1e5), one Adam step;
  3. G_ema <- lerp(G, G_ema, beta), beta = 0.5 ** (batch / ema_nimg), ema_nimg ramping up with the
     images seen (`ema_rampup`); buffers copied;
  4. every `ada_interval` iterations, ADA moves p by the mean sign of D's outputs on reals.

Lazy regularisation (reg phases every `interval` iterations) steps with lr * r and betas ** r,
r = interval / (interval + 1), so that the optimiser sees the same averages as without it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np
import torch

from .augment import adjust_p
from .loss import StyleGAN2Loss
from .rng import RandomSource
from .stats import Stats


class Labels(Protocol):
    """What the step needs of a data set to condition the fakes: its size and an item's label."""

    def __len__(self) -> int: ...

    def get_label(self, idx: int) -> np.ndarray: ...


@dataclass
class Phase:
    name: str                          # Gmain | Greg | Gboth | Dmain | Dreg | Dboth
    module: torch.nn.Module
    opt: torch.optim.Optimizer
    interval: int


def make_phases(G: torch.nn.Module, D: torch.nn.Module, G_opt: dict, D_opt: dict,
                G_reg_interval: Optional[int], D_reg_interval: Optional[int]) -> list[Phase]:
    """Adam for G and D; with a reg interval, a main phase every iteration and a reg phase every
    interval iterations, sharing one optimiser whose lr and betas absorb the interval."""
    phases = []
    for name, module, opt, interval in (("G", G, G_opt, G_reg_interval), ("D", D, D_opt, D_reg_interval)):
        opt = dict(opt, betas=[float(b) for b in opt["betas"]])     # torch's Adam refuses an int beta
        if interval is None:
            adam = torch.optim.Adam(module.parameters(), **opt)
            phases.append(Phase(name + "both", module, adam, 1))
            continue
        ratio = interval / (interval + 1)
        opt["lr"] = opt["lr"] * ratio
        opt["betas"] = [beta ** ratio for beta in opt["betas"]]
        adam = torch.optim.Adam(module.parameters(), **opt)
        phases += [Phase(name + "main", module, adam, 1), Phase(name + "reg", module, adam, interval)]
    return phases


class Trainer:
    """G, D, G_ema, their optimisers, the loss and ADA, stepped one iteration at a time.

    `batch_size` is the global batch (all ranks), `batch_gpu` the images per forward pass on one
    rank. State that a snapshot must keep is `state_dict()`; the networks are saved beside it."""

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, G_ema: torch.nn.Module, loss: StyleGAN2Loss,
                 phases: list[Phase], *, batch_size: int, batch_gpu: int, ema_kimg: float = 10,
                 ema_rampup: Optional[float] = 0.05, ada_target: Optional[float] = None, ada_interval: int = 4,
                 ada_kimg: float = 500, rank: int = 0, world_size: int = 1, stats: Optional[Stats] = None):
        assert batch_size % (batch_gpu * world_size) == 0, (batch_size, batch_gpu, world_size)
        self.G, self.D, self.G_ema, self.loss, self.phases = G, D, G_ema, loss, phases
        self.augment_pipe = loss.augment_pipe
        self.batch_size, self.batch_gpu = batch_size, batch_gpu
        self.ema_kimg, self.ema_rampup = ema_kimg, ema_rampup
        self.ada_target, self.ada_interval, self.ada_kimg = ada_target, ada_interval, ada_kimg
        self.rank, self.world_size = rank, world_size
        self.stats = stats if stats is not None else Stats(rank)
        self.ada_stats = (self.stats.collector("Loss/signs/real")
                          if ada_target is not None and self.augment_pipe is not None else None)
        self.cur_nimg = 0
        self.batch_idx = 0
        self.last_ema_beta: float = 0.0
        self._events: dict = {}

    @property
    def device(self) -> torch.device:
        return self.loss.pl_mean.device

    # ------------------------------------------------------------------------------------------

    def step(self, real_img: torch.Tensor, real_c: torch.Tensor, rng: RandomSource, labels: Labels) -> None:
        """One iteration on this rank's share of the batch: real_img [batch / world, C, H, W] uint8, real_c its labels."""
        device = self.device
        per_rank = self.batch_size // self.world_size
        assert real_img.shape[0] == per_rank and real_img.dtype == torch.uint8, (real_img.shape, per_rank)
        reals = (real_img.to(device).to(torch.float32) / 127.5 - 1).split(self.batch_gpu)
        reals_c = real_c.to(device).split(self.batch_gpu)
        num = len(self.phases) * self.batch_size
        all_z = rng.randn([num, self.G.z_dim]).to(device)
        all_c = np.stack([labels.get_label(int(i)) for i in rng.label_indices(num, len(labels))])
        all_c = torch.from_numpy(all_c).to(device)
        for phase, phase_z, phase_c in zip(self.phases, all_z.split(self.batch_size), all_c.split(self.batch_size)):
            if self.batch_idx % phase.interval != 0:
                continue
            self._run_phase(phase, reals, reals_c, phase_z.split(self.batch_gpu), phase_c.split(self.batch_gpu), rng)
        self._update_ema()
        self.cur_nimg += self.batch_size
        self.batch_idx += 1
        if self.ada_stats is not None and self.batch_idx % self.ada_interval == 0:
            self.ada_stats.update(self.world_size, device)
            adjust_p(self.augment_pipe.p, self.ada_stats["Loss/signs/real"], self.ada_target,
                     self.batch_size * self.ada_interval, self.ada_kimg)

    def phase_seconds(self) -> dict[str, float]:
        """Each phase's GPU time in the last iteration that ran it (NVIDIA's Timing/<phase>; CUDA only)."""
        out = {}
        for name, (start, end) in self._events.items():
            end.synchronize()
            out[name] = start.elapsed_time(end) / 1e3
        return out

    def _run_phase(self, phase: Phase, reals, reals_c, gen_z, gen_c, rng) -> None:
        events = None
        if self.device.type == "cuda" and self.rank == 0:
            events = self._events[phase.name] = (torch.cuda.Event(enable_timing=True),
                                                 torch.cuda.Event(enable_timing=True))
            events[0].record(torch.cuda.current_stream(self.device))
        phase.opt.zero_grad(set_to_none=True)
        phase.module.requires_grad_(True)
        for real_img, real_c, z, c in zip(reals, reals_c, gen_z, gen_c):
            self.loss.accumulate_gradients(phase.name, real_img, real_c, z, c, gain=phase.interval,
                                           cur_nimg=self.cur_nimg, rng=rng, report=self.stats.report)
        phase.module.requires_grad_(False)
        params = [p for p in phase.module.parameters() if p.grad is not None]
        if params:
            flat = torch.cat([p.grad.flatten() for p in params])
            if self.world_size > 1:
                import torch.distributed as dist
                dist.all_reduce(flat)
                flat /= self.world_size
            torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
            for p, g in zip(params, flat.split([p.numel() for p in params])):
                p.grad = g.reshape(p.shape)
        phase.opt.step()
        if events is not None:
            events[1].record(torch.cuda.current_stream(self.device))

    def ema_beta(self) -> float:
        ema_nimg = self.ema_kimg * 1000
        if self.ema_rampup is not None:
            ema_nimg = min(ema_nimg, self.cur_nimg * self.ema_rampup)
        return 0.5 ** (self.batch_size / max(ema_nimg, 1e-8))

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = self.last_ema_beta = self.ema_beta()
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything besides the networks that the next iteration depends on."""
        opts = {}
        for phase in self.phases:
            opts.setdefault(phase.name[0], phase.opt.state_dict())
        return {"cur_nimg": self.cur_nimg, "batch_idx": self.batch_idx, "pl_mean": self.loss.pl_mean.detach().cpu(),
                "augment_p": None if self.augment_pipe is None else self.augment_pipe.p.detach().cpu(),
                "opt": opts, "ada_stats": None if self.ada_stats is None else self.ada_stats.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.cur_nimg, self.batch_idx = int(state["cur_nimg"]), int(state["batch_idx"])
        self.loss.pl_mean.copy_(state["pl_mean"])
        if self.augment_pipe is not None and state.get("augment_p") is not None:
            self.augment_pipe.p.copy_(state["augment_p"])
        done = set()
        for phase in self.phases:
            if phase.name[0] not in done:
                phase.opt.load_state_dict(copy.deepcopy(state["opt"][phase.name[0]]))
                done.add(phase.name[0])
        if self.ada_stats is not None and state.get("ada_stats") is not None:
            self.ada_stats.load_state_dict(state["ada_stats"])
