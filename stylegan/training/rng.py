"""Where a training step's random numbers come from: one object, passed to every drawer.

NVIDIA's loop draws from torch's and numpy's global generators in a fixed order: per iteration the
latents of every phase, then the labels; per phase the style-mixing cutoff, its coin and its second
z, one noise image per synthesis layer, the path-length noise, and in every augment call a fixed list
of tensors whatever p is (p only gates them). Our loss, augment pipe and synthesis layers draw the
same tensors in the same order, but from a `RandomSource` they are handed, so that

  * a run's whole random state is one object's state, which a snapshot stores (`TorchRandom`), and
  * a test can hand the step the very tensors NVIDIA's code drew (`Replay`) and compare it number
    for number with a recording of NVIDIA's loop.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch


class RandomSource:
    """The draws a training step makes. `shape` is a list of ints; results live on the source's device."""

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """Standard normal float32 (torch.randn)."""
        raise NotImplementedError

    def rand(self, shape: Sequence[int]) -> torch.Tensor:
        """Uniform [0, 1) float32 (torch.rand)."""
        raise NotImplementedError

    def randint(self, low: int, high: int) -> torch.Tensor:
        """One int64 in [low, high), as a 0-d tensor (torch's `random_(low, high)`)."""
        raise NotImplementedError

    def label_indices(self, count: int, high: int) -> np.ndarray:
        """`count` data set indices in [0, high) whose labels condition the fakes (numpy's randint, one at a time)."""
        raise NotImplementedError


class TorchRandom(RandomSource):
    """A torch generator on the training device for the tensors, a numpy RandomState for the labels."""

    def __init__(self, seed: int, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.numpy = np.random.RandomState(int(seed) % (1 << 32))

    def randn(self, shape):
        return torch.randn(list(shape), generator=self.generator, device=self.device)

    def rand(self, shape):
        return torch.rand(list(shape), generator=self.generator, device=self.device)

    def randint(self, low, high):
        return torch.empty([], dtype=torch.int64, device=self.device).random_(low, high, generator=self.generator)

    def label_indices(self, count, high):
        return np.array([self.numpy.randint(high) for _ in range(count)], dtype=np.int64)

    # A snapshot stores both states; resuming from them continues the same stream bit for bit.
    def state_dict(self) -> dict:
        kind, keys, pos, has_gauss, cached = self.numpy.get_state()
        assert kind == "MT19937"
        return {"torch": self.generator.get_state(), "numpy_keys": torch.from_numpy(keys.astype(np.int64)),
                "numpy_pos": int(pos), "numpy_has_gauss": int(has_gauss), "numpy_cached_gaussian": float(cached)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["torch"].cpu())
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        self.numpy.set_state(("MT19937", keys, int(state["numpy_pos"]), int(state["numpy_has_gauss"]),
                              float(state["numpy_cached_gaussian"])))


class ReplayMismatch(AssertionError):
    """The step asked for another draw than the recording holds next: the draw orders differ."""


class Replay(RandomSource):
    """Hands out recorded draws in order, checking each against what is asked (kind and shape).

    `draws` are (kind, tensor) pairs with kind 'randn' | 'rand' | 'randint'; `labels` the recorded
    label indices. `remaining` says how many draws are left, so a test can assert all were used."""

    def __init__(self, draws: Iterable[tuple[str, torch.Tensor]], labels: np.ndarray | None = None,
                 device: torch.device | str = "cpu"):
        self.draws = list(draws)
        self.labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
        self.device = torch.device(device)
        self.position = 0
        self.label_position = 0

    @property
    def remaining(self) -> int:
        return len(self.draws) - self.position

    def _next(self, kind: str, shape) -> torch.Tensor:
        if self.position >= len(self.draws):
            raise ReplayMismatch(f"draw {self.position} ({kind} {list(shape)}) asked, but the recording has ended")
        have, t = self.draws[self.position]
        if have != kind or list(t.shape) != list(shape):
            raise ReplayMismatch(f"draw {self.position}: asked for {kind} {list(shape)}, "
                                 f"the recording holds {have} {list(t.shape)}")
        self.position += 1
        return t.to(self.device).clone()

    def randn(self, shape):
        return self._next("randn", shape)

    def rand(self, shape):
        return self._next("rand", shape)

    def randint(self, low, high):
        t = self._next("randint", [])
        assert low <= int(t) < high, (int(t), low, high)
        return t

    def label_indices(self, count, high):
        got = self.labels[self.label_position:self.label_position + count]
        if len(got) != count:
            raise ReplayMismatch(f"{count} label indices asked, the recording has {len(got)} left")
        self.label_position += count
        return got.copy()


class GlobalRandom(RandomSource):
    """torch's and numpy's global generators, as NVIDIA's code draws: the default where no source is given."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    def randn(self, shape):
        return torch.randn(list(shape), device=self.device)

    def rand(self, shape):
        return torch.rand(list(shape), device=self.device)

    def randint(self, low, high):
        return torch.empty([], dtype=torch.int64, device=self.device).random_(low, high)

    def label_indices(self, count, high):
        return np.array([np.random.randint(high) for _ in range(count)], dtype=np.int64)
