"""Seeds -> latents and class labels, drawn exactly as NVIDIA's scripts draw them, and the integer lists
('0-99,200') that name seeds, rows and layers. It imports nothing else of the package."""
from __future__ import annotations

import bisect
import re
from typing import Iterable, Sequence

import numpy as np
import torch

from ._errors import ParamError

_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")


class IntRanges(Sequence[int]):
    """An ordered list of integers held as disjoint ranges: '0-4294967295' costs a few bytes, not
    32 GB. Later repeats of an integer are dropped (its first place is kept), so len() is the true
    count; `unique=False` keeps them (a walk through key seeds may return to one). Slicing with a
    step (seeds[rank::world]) stays lazy."""

    def __init__(self, ranges: Iterable[range] = (), unique: bool = True):
        covered: list[tuple[int, int]] = []   # sorted, disjoint [lo, hi) of every integer kept so far
        kept: list[range] = []
        for r in ranges:
            assert r.step == 1
            for piece in _uncovered(r.start, r.stop, covered) if unique else [r] if len(r) else []:
                if kept and kept[-1].stop == piece.start:
                    kept[-1] = range(kept[-1].start, piece.stop)   # '0,1,2' is one range
                else:
                    kept.append(piece)
        self._ranges = kept
        self._starts = np.cumsum([0] + [len(r) for r in kept]).tolist()

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
        return isinstance(other, (list, tuple, IntRanges, _Strided)) and len(self) == len(other) and \
            all(a == b for a, b in zip(self, other))


def _uncovered(lo: int, hi: int, covered: list[tuple[int, int]]) -> list[range]:
    """The parts of [lo, hi) outside `covered` (sorted disjoint intervals), in order; then adds
    [lo, hi) to `covered`, merged, so each new range costs O(log n) plus what it overlaps."""
    if hi <= lo:
        return []
    i = bisect.bisect_right(covered, (lo, float("inf"))) - 1   # last interval starting at or before lo
    i = max(i, 0)
    j = i
    pieces, at = [], lo
    while j < len(covered) and covered[j][0] < hi:
        a, b = covered[j]
        if b > at:
            if a > at:
                pieces.append(range(at, a))
            at = max(at, b)
        j += 1
    if at < hi:
        pieces.append(range(at, hi))
    # Merge [lo, hi) with the intervals it touches (i..j-1 overlap; neighbours that abut join too).
    k = i
    while k > 0 and covered[k - 1][1] >= lo:
        k -= 1
    while k < len(covered) and covered[k][1] < lo:
        k += 1
    m = k
    new_lo, new_hi = lo, hi
    while m < len(covered) and covered[m][0] <= hi:
        new_lo, new_hi = min(new_lo, covered[m][0]), max(new_hi, covered[m][1])
        m += 1
    covered[k:m] = [(new_lo, new_hi)]
    return pieces


def parse_int_list(spec: str | Iterable[int], unique: bool = True) -> IntRanges:
    """'0-3,7,10-11' -> 0, 1, 2, 3, 7, 10, 11 (ranges inclusive, order kept, repeats dropped
    unless not `unique`), lazily."""
    if isinstance(spec, IntRanges):
        return IntRanges(spec._ranges, unique)   # range by range: stays lazy
    if not isinstance(spec, str):
        return IntRanges((range(int(s), int(s) + 1) for s in spec), unique)
    ranges = []
    for part in spec.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"bad integer list {spec!r}: expected e.g. '0-99,200,300-310'")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise ValueError(f"bad range {part.strip()!r} in {spec!r}: end before start")
        ranges.append(range(lo, hi + 1))
    return IntRanges(ranges, unique)


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
            raise ParamError("{class_idx} given, but the network is unconditional", "class_idx")
        return c
    if class_idx is None:
        raise ParamError(f"the network is conditional ({c_dim} classes): choose one with {{class_idx}}", "class_idx")
    if not 0 <= class_idx < c_dim:
        raise ParamError(f"{{class_idx={class_idx}}} out of range: the network has classes 0..{c_dim - 1}", "class_idx")
    c[:, class_idx] = 1
    return c
