"""Replaying a recording of NVIDIA's training arithmetic (a fixture npz + json) through our trainer.

A recording holds the initial weights, the reals of each iteration, every random tensor NVIDIA's
code drew in draw order (`rng/NNNNN`, described in the json's `random_draws`), the label indices, and
what came out: per-phase losses, gradient norms, weights, G_ema, optimiser states, pl_mean, p. This
module builds our Trainer with the recording's settings, hands it the recorded draws through a
`Replay` source and runs the iterations, keeping what each phase reported and its gradients."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from stylegan.loaders.kwargs import canonical_kwargs
from stylegan.networks import create_model
from stylegan.training.augment import AugmentPipe
from stylegan.training.loss import StyleGAN2Loss
from stylegan.training.rng import Replay
from stylegan.training.trainer import Trainer, make_phases

# The json names NVIDIA's ops; the replay source knows three kinds of draw.
DRAW_KINDS = {"randn": "randn", "randn_like": "randn", "rand": "rand", "random_": "randint"}
NET_ARCH = {"Generator": None, "Discriminator": "stylegan2_discriminator"}


@dataclass
class Recording:
    npz: dict
    meta: dict

    @classmethod
    def load(cls, path: Path) -> "Recording":
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
            npz = {k: z[k] for k in z.files}
        return cls(npz, json.loads(path.with_suffix(".json").read_text()))

    @property
    def settings(self) -> dict:
        return self.meta["settings"]

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        n = len(prefix) + 1
        return {k[n:]: torch.from_numpy(np.asarray(v)) for k, v in self.npz.items() if k.startswith(prefix + "/")}

    def draws(self, iteration: int | None = None) -> list[tuple[str, torch.Tensor]]:
        """(kind, tensor) of every draw from the first iteration on (or of one iteration)."""
        out = []
        for d in self.meta["random_draws"]:
            if d["iteration"] < 0 or (iteration is not None and d["iteration"] != iteration):
                continue
            out.append((DRAW_KINDS[d["op"]], torch.from_numpy(np.asarray(self.npz[f"rng/{d['idx']:05d}"]))))
        return out

    def augment_calls(self) -> list[tuple[str, np.ndarray, np.ndarray, list]]:
        """(key, input, output, draws) of every recorded augment call, from the module-call outputs."""
        if any(k.startswith("it0/calls/") for k in self.npz):
            return self._flat_augment_calls()
        calls, by_phase = [], {}
        for d in self.meta["random_draws"]:
            if d["iteration"] >= 0 and d["site"].startswith("training/augment.py"):
                by_phase.setdefault((d["iteration"], d["phase"]), []).append(d)
        for (it, phase), ds in by_phase.items():
            prefix = f"it{it}/{phase}/calls/"
            keys = sorted(k for k in self.npz if k.startswith(prefix))
            augments = [k for k in keys if k.endswith("_augment")]
            per_call = len(ds) // len(augments)
            for i, key in enumerate(augments):
                before = keys[keys.index(key) - 1] if keys.index(key) > 0 else None
                # An augment call follows a synthesis call (fakes) or starts the reals' pass.
                source = self.npz[before] if before and before.endswith("_synthesis") else self.npz[f"it{it}/reals_fed"]
                draws = [(DRAW_KINDS[d["op"]], torch.from_numpy(np.asarray(self.npz[f"rng/{d['idx']:05d}"])))
                         for d in ds[i * per_call:(i + 1) * per_call]]
                calls.append((key, source, self.npz[key], draws))
        return calls

    def _flat_augment_calls(self):
        """stylegan3 recording: iteration 0's calls as `it0/calls/NN_<phase>_<module>`, rounds of
        batch_gpu; fakes and reals reach the pipe blurred (training/loss.py `blur`)."""
        from stylegan.training.loss import blur
        s = self.meta["settings"]
        draws = [d for d in self.meta["random_draws"] if d["iteration"] == 0 and d["site"].startswith("training/augment")]
        keys = sorted(k for k in self.npz if k.startswith("it0/calls/"))
        reals = self.npz["it0/reals_uint8"].astype(np.float32) / 127.5 - 1
        sigma = float(self.npz["it0/blur_sigma"])
        calls, rounds, n = [], {}, 0
        for i, key in enumerate(keys):
            if not key.endswith("_augment"):
                continue
            phase = key.split("_")[1]
            prev = keys[i - 1] if i > 0 else ""
            if prev.endswith("_synthesis") and prev.split("_")[1] == phase:
                source = blur(torch.from_numpy(self.npz[prev]), sigma).numpy()
            else:
                r = rounds[phase] = rounds.get(phase, -1) + 1
                source = blur(torch.from_numpy(reals[r * s["batch_gpu"]:(r + 1) * s["batch_gpu"]]), sigma).numpy()
            mine = draws[n * 26:(n + 1) * 26]
            n += 1
            calls.append((key, source, self.npz[key], [(DRAW_KINDS[d["op"]], torch.from_numpy(
                np.asarray(self.npz[f"rng/{d['idx']:05d}"]))) for d in mine]))
        return calls


class _Labels:
    """The recorded run's data set, as far as the labels of the fakes need it."""

    def __init__(self, n: int, labels: np.ndarray):
        self.n, self.labels = n, labels

    def __len__(self):
        return self.n

    def get_label(self, idx):
        return self.labels[idx].copy()


def _kwargs(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "class_name"}


@dataclass
class Replayed:
    trainer: Trainer
    reports: dict = field(default_factory=dict)     # (iteration, phase, name) -> values
    grads: dict = field(default_factory=dict)       # (iteration, phase) -> {param: grad or None}
    states: dict = field(default_factory=dict)      # iteration -> {'G' | 'D' | 'G_ema' | 'G_opt' | 'D_opt': state}
    rng: Replay | None = None


def code_base(rec: Recording) -> tuple[str, str]:
    """(our architecture, training rules) of a recording: stylegan2-ada-pytorch's or stylegan3's."""
    if rec.settings["G_kwargs"]["class_name"] == "training.networks_stylegan3.Generator":
        return "stylegan3", "stylegan3"
    return "stylegan2", "stylegan2-ada"


def build_trainer(rec: Recording) -> Trainer:
    s = rec.settings
    arch, rules = code_base(rec)
    ada = rules == "stylegan2-ada"
    G = create_model(arch, **canonical_kwargs(arch, _kwargs(s["G_kwargs"]), ada=ada))
    D = create_model("stylegan2_discriminator",
                     **canonical_kwargs("stylegan2_discriminator", _kwargs(s["D_kwargs"]), ada=ada))
    G_ema = create_model(arch, **G.init_kwargs)
    G_ema_key = "init/G_ema" if rec.state("init/G_ema") else "init/G"   # stylegan3's starts as a copy of G
    for net, key in ((G, "init/G"), (D, "init/D"), (G_ema, G_ema_key)):
        net.load_state_dict(rec.state(key))
    G.train().requires_grad_(False)
    D.train().requires_grad_(False)
    G_ema.eval().requires_grad_(False)
    augment = AugmentPipe(**_kwargs(s["augment_kwargs"]))
    augment.p.copy_(torch.from_numpy(np.asarray(rec.npz["init/augment_p"])))
    loss = StyleGAN2Loss(G, D, augment, **_kwargs(s["loss_kwargs"]), rules=rules)
    if "init/pl_mean" in rec.npz:
        loss.pl_mean.copy_(torch.from_numpy(np.asarray(rec.npz["init/pl_mean"])))
    phases = make_phases(G, D, _kwargs(s["G_opt_kwargs"]), _kwargs(s["D_opt_kwargs"]), s["G_reg_interval"],
                         s["D_reg_interval"])
    return Trainer(G, D, G_ema, loss, phases, batch_size=s["batch_size"], batch_gpu=s["batch_gpu"],
                   ema_kimg=s["ema_kimg"], ema_rampup=s["ema_rampup"], ada_target=s["ada_target"],
                   ada_interval=s["ada_interval"], ada_kimg=s["ada_kimg"])


def replay(rec: Recording, iterations: int | None = None) -> Replayed:
    """Run the recorded iterations through our trainer with the recorded draws."""
    trainer = build_trainer(rec)
    s = rec.settings
    out = Replayed(trainer, rng=Replay(rec.draws(), rec.npz["np/label_randint"]))
    phase_now = [None]
    report = trainer.stats.report

    def recording_report(name, value):
        out.reports.setdefault((trainer.batch_idx, phase_now[0], name), []).append(value.detach().flatten().clone())
        report(name, value)

    trainer.stats.report = recording_report
    run_phase = trainer._run_phase

    def recording_phase(phase, *args):
        phase_now[0] = phase.name
        run_phase(phase, *args)
        out.grads[(trainer.batch_idx, phase.name)] = {
            n: None if p.grad is None else p.grad.detach().clone() for n, p in phase.module.named_parameters()}

    trainer._run_phase = recording_phase
    n, c_dim = s["dataset"]["n"], s["G_kwargs"]["c_dim"]
    labels = _Labels(n, rec.npz["data/labels"] if c_dim else np.zeros([n, 0], np.float32))
    for it in range(iterations if iterations is not None else s["iters"]):
        reals = torch.from_numpy(rec.npz[f"it{it}/reals_uint8"])
        trainer.step(reals, torch.from_numpy(labels.labels[rec.npz[f"it{it}/sampler_idx"]]), out.rng, labels)
        out.states[it] = {"G": _clone(trainer.G.state_dict()), "D": _clone(trainer.D.state_dict()),
                          "G_ema": _clone(trainer.G_ema.state_dict()),
                          "G_opt": _opt_state(trainer.phases[0].opt, trainer.G),
                          "D_opt": _opt_state(trainer.phases[-1].opt, trainer.D),
                          "augment_p": float(trainer.augment_pipe.p), "ema_beta": trainer.last_ema_beta,
                          "pl_mean": float(trainer.loss.pl_mean)}
    return out


def _clone(state: dict) -> dict:
    return {k: v.detach().clone() for k, v in state.items()}


def _opt_state(opt: torch.optim.Optimizer, module: torch.nn.Module) -> dict:
    """{param name: {exp_avg, exp_avg_sq, step}} of an Adam over module.parameters()."""
    return {n: {k: v.detach().clone() for k, v in opt.state[p].items()}
            for n, p in module.named_parameters() if p in opt.state}
