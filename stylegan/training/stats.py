"""Training statistics as NVIDIA's `training_stats` keeps them: named scalars reported anywhere in the
step, averaged over a period by collectors and summed over ranks.

A report adds (count, sum, sum of squares) of its values, in float64, to every collector whose regex
matches the name; `Collector.update()` sums those moments over the ranks (one all_reduce) and makes
them the collector's current averages. The loop has two collectors: one per tick for stats.jsonl
(`.*`) and ADA's (`Loss/signs/real`), whose mean over ada_interval iterations steers p. Moments stay
on the device between updates, so reporting costs no synchronisation.
"""
from __future__ import annotations

import math
import re
from typing import Optional

import torch

MOMENTS = 3   # count, sum, sum of squares


class Stats:
    """The reporting side: `report(name, values)` from the loss and the loop."""

    def __init__(self, rank: int = 0):
        self.rank = rank
        self.collectors: list[Collector] = []

    def report(self, name: str, value) -> None:
        elems = torch.as_tensor(value)
        if elems.numel() == 0:
            return
        elems = elems.detach().flatten().to(torch.float32)
        moments = torch.stack([torch.ones_like(elems).sum(), elems.sum(), elems.square().sum()]).to(torch.float64)
        for c in self.collectors:
            if c.regex.fullmatch(name):
                c._add(name, moments)

    def report0(self, name: str, value) -> None:
        """Values only rank 0 knows (timings, progress): the other ranks report nothing."""
        if self.rank == 0:
            self.report(name, value)

    def collector(self, regex: str = ".*", keep_previous: bool = True) -> "Collector":
        c = Collector(regex, keep_previous)
        self.collectors.append(c)
        return c


class Collector:
    """Averages of the reports since the previous `update()`; with keep_previous, a name that got no
    report keeps its previous average (as NVIDIA's does)."""

    def __init__(self, regex: str = ".*", keep_previous: bool = True):
        self.regex = re.compile(regex)
        self.keep_previous = keep_previous
        self._pending: dict[str, torch.Tensor] = {}
        self._moments: dict[str, torch.Tensor] = {}

    def _add(self, name: str, moments: torch.Tensor) -> None:
        if name in self._pending:
            self._pending[name] = self._pending[name] + moments.to(self._pending[name].device)
        else:
            self._pending[name] = moments.clone()

    def update(self, world_size: int = 1, device: Optional[torch.device] = None) -> None:
        """Close the period: sum pending moments over ranks (names are reported alike on every rank)."""
        if not self.keep_previous:
            self._moments.clear()
        names = sorted(self._pending)
        if world_size > 1:
            import torch.distributed as dist
            # Every rank must take part with the same names: exchange them first.
            all_names: list = [None] * world_size
            dist.all_gather_object(all_names, names)
            names = sorted(set().union(*all_names))
        if not names:
            return
        device = device or torch.device("cpu")
        sums = torch.stack([self._pending.get(n, torch.zeros(MOMENTS, dtype=torch.float64)).to(device)
                            for n in names])
        if world_size > 1:
            import torch.distributed as dist
            dist.all_reduce(sums)
        sums = sums.cpu()
        for name, delta in zip(names, sums):
            if float(delta[0]) != 0:
                self._moments[name] = delta
        self._pending.clear()

    def num(self, name: str) -> int:
        m = self._moments.get(name)
        return 0 if m is None else int(m[0])

    def mean(self, name: str) -> float:
        m = self._moments.get(name)
        return float("nan") if m is None or int(m[0]) == 0 else float(m[1] / m[0])

    def std(self, name: str) -> float:
        m = self._moments.get(name)
        if m is None or int(m[0]) == 0 or not math.isfinite(float(m[1])):
            return float("nan")
        if int(m[0]) == 1:
            return 0.0
        mean = float(m[1] / m[0])
        return math.sqrt(max(float(m[2] / m[0]) - mean ** 2, 0))

    def __getitem__(self, name: str) -> float:
        return self.mean(name)

    def as_dict(self) -> dict[str, dict[str, float]]:
        """{name: {'num', 'mean', 'std'}}: NVIDIA's stats.jsonl entries."""
        return {n: {"num": self.num(n), "mean": self.mean(n), "std": self.std(n)} for n in sorted(self._moments)}

    # Resuming must continue ADA's averages where they were.
    def state_dict(self) -> dict:
        return {"pending": {k: v.cpu() for k, v in self._pending.items()},
                "moments": {k: v.cpu() for k, v in self._moments.items()}}

    def load_state_dict(self, state: dict) -> None:
        self._pending = {k: v.clone().to(torch.float64) for k, v in state.get("pending", {}).items()}
        self._moments = {k: v.clone().to(torch.float64) for k, v in state.get("moments", {}).items()}
