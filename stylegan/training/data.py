"""Feeding the loop: NVIDIA's infinite sampler (its item order exactly), a loader that knows where the
sampler stood at every batch it hands out (so a snapshot can store that), and the snapshot grids.

The sampler shuffles once with `seed`, then walks the order forever, swapping each visited item with
one up to `window * N` places before it: every item comes once per epoch, in an order that keeps
changing. Rank r of w takes items r, r + w, ...: the ranks split one stream."""
from __future__ import annotations

import collections
from typing import Iterator, Optional

import numpy as np
import torch


class InfiniteSampler:
    def __init__(self, size: int, rank: int = 0, num_replicas: int = 1, shuffle: bool = True, seed: int = 0,
                 window_size: float = 0.5):
        assert size > 0 and num_replicas > 0 and 0 <= rank < num_replicas and 0 <= window_size <= 1
        self.size, self.rank, self.num_replicas = size, rank, num_replicas
        self.order = np.arange(size)
        self.rnd: Optional[np.random.RandomState] = None
        self.window = 0
        if shuffle:
            self.rnd = np.random.RandomState(seed)
            self.rnd.shuffle(self.order)
            self.window = int(np.rint(size * window_size))
        self.idx = 0

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        while True:
            i = self.idx % self.size
            mine = self.idx % self.num_replicas == self.rank
            item = int(self.order[i])
            if self.window >= 2:
                j = (i - self.rnd.randint(self.window)) % self.size
                self.order[i], self.order[j] = self.order[j], self.order[i]
            self.idx += 1
            if mine:
                return item

    def take(self, n: int) -> list[int]:
        return [next(self) for _ in range(n)]

    def state_dict(self) -> dict:
        state = {"order": torch.from_numpy(self.order.astype(np.int64)), "idx": self.idx}
        if self.rnd is not None:
            _, keys, pos, has_gauss, cached = self.rnd.get_state()
            state.update(rnd_keys=torch.from_numpy(keys.astype(np.int64)), rnd_pos=int(pos),
                         rnd_has_gauss=int(has_gauss), rnd_cached=float(cached))
        return state

    def load_state_dict(self, state: dict) -> None:
        order = state["order"].numpy()
        if order.shape != self.order.shape:
            raise ValueError(f"the snapshot's sampler covers {order.size} images, the data set has {self.size}")
        self.order = order.astype(self.order.dtype).copy()
        self.idx = int(state["idx"])
        if self.rnd is not None:
            self.rnd.set_state(("MT19937", state["rnd_keys"].numpy().astype(np.uint32), int(state["rnd_pos"]),
                                int(state["rnd_has_gauss"]), float(state["rnd_cached"])))


class _Batches:
    """Batches of indices from the sampler, remembering the sampler's state after each one."""

    def __init__(self, sampler: InfiniteSampler, batch: int):
        self.sampler, self.batch = sampler, batch
        self.states: collections.deque = collections.deque()

    def __iter__(self):
        while True:
            indices = self.sampler.take(self.batch)
            self.states.append(self.sampler.state_dict())
            yield indices


class Loader:
    """(images [B, C, H, W] uint8, labels [B, c_dim]) batches of one rank, loaded by worker processes
    ahead of use; `state_dict()` is the sampler's position after the last batch handed out (the
    workers may have read further: that read-ahead is not consumed, so a resume redoes it)."""

    def __init__(self, dataset, sampler: InfiniteSampler, batch: int, workers: int = 0, pin_memory: bool = False):
        self.dataset, self.sampler, self.batch = dataset, sampler, batch
        self.workers, self.pin_memory = workers, pin_memory
        self._consumed = sampler.state_dict()
        self._iter = None

    def _start(self):
        self._batches = _Batches(self.sampler, self.batch)
        extra = dict(prefetch_factor=2, persistent_workers=False) if self.workers > 0 else {}
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=self._batches, num_workers=self.workers,
                                             pin_memory=self.pin_memory, collate_fn=_collate, **extra)
        self._iter = iter(loader)

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._iter is None:
            self._start()
        try:
            images, labels = next(self._iter)
        except ValueError as e:
            # A worker's error arrives wrapped in its traceback; its last line is the reader's message.
            text = str(e).strip().splitlines()
            raise ValueError(text[-1].split(": ", 1)[-1] if "Original Traceback" in str(e) else str(e)) from None
        self._consumed = self._batches.states.popleft()
        return images, labels

    def state_dict(self) -> dict:
        return self._consumed

    def load_state_dict(self, state: dict) -> None:
        assert self._iter is None, "restore the loader before its first batch"
        self.sampler.load_state_dict(state)
        self._consumed = self.sampler.state_dict()


def _collate(items):
    images = torch.from_numpy(np.stack([img for img, _ in items])).permute(0, 3, 1, 2).contiguous()
    labels = torch.from_numpy(np.stack([label for _, label in items]))
    return images, labels


def grid_size(resolution: tuple[int, int], small: bool = False) -> tuple[int, int]:
    """(columns, rows) of the snapshot grids: NVIDIA's (a 7680x4320 canvas, 7..32 x 4..32 images), or
    at most 8 x 4 where rendering is costly (the CPU)."""
    h, w = resolution
    gw, gh = int(np.clip(7680 // w, 7, 32)), int(np.clip(4320 // h, 4, 32))
    return (min(gw, 8), min(gh, 4)) if small else (gw, gh)


def grid_indices(dataset, size: tuple[int, int], seed: int = 0) -> list[int]:
    """Which data set items the reals grid shows: a random subset, or with labels one class per row
    (NVIDIA's rule, so the fakes grid's labels follow the same pattern)."""
    gw, gh = size
    rnd = np.random.RandomState(seed)
    if not getattr(dataset, "has_labels", False):
        order = list(range(len(dataset)))
        rnd.shuffle(order)
        return [order[i % len(order)] for i in range(gw * gh)]
    groups: dict = {}
    for idx in range(len(dataset)):
        groups.setdefault(tuple(dataset.get_label(idx).flat[::-1]), []).append(idx)
    keys = sorted(groups)
    for k in keys:
        rnd.shuffle(groups[k])
    out = []
    for y in range(gh):
        members = groups[keys[y % len(keys)]]
        out += [members[x % len(members)] for x in range(gw)]
        groups[keys[y % len(keys)]] = [members[(i + gw) % len(members)] for i in range(len(members))]
    return out


def image_grid(images: np.ndarray, size: tuple[int, int], drange=(-1, 1)) -> np.ndarray:
    """[N, C, H, W] in drange -> one [gh * H, gw * W, C] uint8 image (rounded, as NVIDIA saves grids)."""
    lo, hi = drange
    gw, gh = size
    x = (np.asarray(images, dtype=np.float32) - lo) * (255 / (hi - lo))
    x = np.rint(x).clip(0, 255).astype(np.uint8)
    n, c, h, w = x.shape
    assert n == gw * gh and c in (1, 3)
    return x.reshape(gh, gw, c, h, w).transpose(0, 3, 1, 4, 2).reshape(gh * h, gw * w, c)
