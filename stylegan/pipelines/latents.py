"""Seeds, latents and labels, drawn exactly as NVIDIA's scripts draw them."""
from __future__ import annotations

import bisect
import re
from typing import Iterable, Sequence

import numpy as np
import torch

_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")


class IntRanges(Sequence[int]):
    """An ordered list of integers held as disjoint ranges: '0-4294967295' costs a few bytes, not
    32 GB. Later repeats of an integer are dropped (its first place is kept), so len() is the true
    count. Slicing with a step (seeds[rank::world]) stays lazy."""

    def __init__(self, ranges: Iterable[range] = ()):
        kept: list[range] = []
        for r in ranges:
            for piece in _subtract(r, kept):
                kept.append(piece)
        self._ranges = [r for r in kept if len(r)]
        self._starts = np.cumsum([0] + [len(r) for r in self._ranges]).tolist()

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return _Strided(self, range(start, stop, step))
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("index out of range")
        k = bisect.bisect_right(self._starts, index) - 1
        return self._ranges[k][index - self._starts[k]]

    def __iter__(self):
        for r in self._ranges:
            yield from r

    def __eq__(self, other) -> bool:
        return isinstance(other, (list, tuple, IntRanges, _Strided)) and len(self) == len(other) and \
            all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return "IntRanges(" + ",".join(f"{r.start}-{r.stop - 1}" if len(r) > 1 else str(r.start)
                                        for r in self._ranges) + ")"


class _Strided(Sequence[int]):
    """A lazy view of every k-th element of a sequence."""

    def __init__(self, base: Sequence[int], positions: range):
        self.base, self.positions = base, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return _Strided(self.base, self.positions[index])
        return self.base[self.positions[index]]

    def __iter__(self):
        for i in self.positions:
            yield self.base[i]

    def __eq__(self, other) -> bool:
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))


def _subtract(r: range, taken: list[range]) -> list[range]:
    """The parts of a step-1 range that no range in `taken` covers, in order."""
    pieces = [r]
    for t in taken:
        out = []
        for p in pieces:
            lo, hi = max(p.start, t.start), min(p.stop, t.stop)
            if lo >= hi:
                out.append(p)
                continue
            out += [q for q in (range(p.start, lo), range(hi, p.stop)) if len(q)]
        pieces = out
    return pieces


def parse_int_list(spec: str | Iterable[int]) -> IntRanges:
    """'0-3,7,10-11' -> 0, 1, 2, 3, 7, 10, 11 (ranges inclusive, order kept, repeats dropped), lazily."""
    if not isinstance(spec, str):
        return IntRanges(range(int(s), int(s) + 1) for s in spec)
    ranges = []
    for part in spec.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"bad integer list {spec!r}: expected e.g. '0-99,200,300-310'")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise ValueError(f"bad range {part.strip()!r} in {spec!r}: end before start")
        ranges.append(range(lo, hi + 1))
    return IntRanges(ranges)


def check_seeds(seeds: Sequence[int]) -> None:
    # RandomState accepts 0 .. 2**32 - 1; say so instead of numpy's traceback. Range lists are
    # checked by their ends, so a billion seeds cost nothing here.
    ends = [x for r in seeds._ranges for x in (r.start, r.stop - 1)] if isinstance(seeds, IntRanges) else seeds
    for s in ends:
        if not 0 <= s < 2 ** 32:
            raise ValueError(f"seed {s} out of range: seeds must lie in 0..{2 ** 32 - 1}")


def z_from_seeds(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """[N, z_dim] float64, row i = RandomState(seeds[i]).randn(1, z_dim): gen_images.py's latents."""
    check_seeds(seeds)
    return np.stack([np.random.RandomState(s).randn(1, z_dim)[0] for s in seeds]) if len(seeds) else \
        np.zeros([0, z_dim])


def class_labels(c_dim: int, n: int, class_idx: int | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """One-hot labels for a conditional network, an empty [n, 0] tensor otherwise."""
    c = torch.zeros([n, c_dim], device=device)
    if c_dim == 0:
        if class_idx is not None:
            raise ValueError("class_idx given, but the network is unconditional")
        return c
    if class_idx is None:
        raise ValueError(f"the network is conditional ({c_dim} classes): choose one with class_idx")
    if not 0 <= class_idx < c_dim:
        raise ValueError(f"class {class_idx} out of range: the network has classes 0..{c_dim - 1}")
    c[:, class_idx] = 1
    return c
