"""Edits as images: each input latent moved along each direction by each strength.

An edit is written `SOURCE[:K][@ROWS]:STRENGTHS`: SOURCE a direction file or a method computed
on the spot ('sefa', 'ganspace'); K the component (default 0); ROWS the ws rows it moves (e.g.
0-3; default: the direction's own, else all); STRENGTHS one number, a list (-2,0,2) or a range
A..B (spread over `steps` values). E.g. `smile.npy:-3..3`, `sefa:2@0-3:5`, `pca.direction:1:-2,2`."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..editing import Direction, edit, ganspace, load_direction, sefa
from ..seeds import parse_int_list

METHODS = ("sefa", "ganspace")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_STRENGTHS = re.compile(rf"^(?:{_NUMBER}\.\.{_NUMBER}|{_NUMBER}(?:,{_NUMBER})*)$")


@dataclass
class EditSpec:
    source: str
    component: int
    rows: list[int] | None
    strengths: list[float]

    @property
    def label(self) -> str:
        """The edit in output names: 'sefa1_rows0-3' for sefa:1@0-3 (no '@', which shells and some
        file systems and web servers treat specially)."""
        name = Path(self.source).stem if self.source not in METHODS else self.source
        rows = f"_rows{self.rows[0]}-{self.rows[-1]}" if self.rows else ""
        return f"{name}{self.component}{rows}"


def parse_strengths(text: str, steps: int = 7) -> list[float]:
    if not _STRENGTHS.match(text):
        raise ValueError(f"bad strengths {text!r}: expected e.g. 3, -2,0,2 or -3..3")
    if ".." in text:
        lo, hi = (float(v) for v in text.split(".."))
        return [float(v) for v in np.linspace(lo, hi, steps)]
    return [float(v) for v in text.split(",")]


def parse_edit(spec: str, steps: int = 7) -> EditSpec:
    """'SOURCE[:K][@ROWS]:STRENGTHS' -> EditSpec (see the module doc)."""
    head, sep, strengths = spec.rpartition(":")
    if not sep or not head:
        raise ValueError(f"bad edit {spec!r}: expected SOURCE[:K][@ROWS]:STRENGTHS, e.g. smile.npy:-3..3")
    rows = None
    if "@" in head:
        head, _, rows_text = head.rpartition("@")
        rows = parse_int_list(rows_text)
    component = 0
    source, sep, k = head.rpartition(":")
    if sep and k.isdigit():
        component = int(k)
    else:
        source = head
    return EditSpec(source, component, rows, parse_strengths(strengths, steps))


def direction_file(source: str) -> str:
    """A direction file's path as given, or a registry direction (`stylegan models --kind direction`)
    resolved through the hub: cached, or downloaded once."""
    from .. import hub
    if os.path.exists(source) or not hub.is_known(source):
        return source
    entry = hub.lookup(source)
    if entry.kind != "direction":
        raise ValueError(f"{source}: a {entry.kind} model in the registry, not a direction")
    return str(hub.resolve(source))


def resolve_direction(spec: EditSpec, G: torch.nn.Module, cache: dict | None = None) -> Direction:
    """The direction an edit names: a file (checked against G's w), or SeFa / GANSpace of G."""
    cache = {} if cache is None else cache
    key = (spec.source, tuple(spec.rows or ()))
    if key not in cache:
        if spec.source == "sefa":
            cache[key] = sefa(G, spec.rows or "all", num_components=max(16, spec.component + 1))
        elif spec.source == "ganspace":
            cache[key] = ganspace(G, num_samples=20_000, num_components=max(16, spec.component + 1))
        else:
            cache[key] = load_direction(direction_file(spec.source), w_dim=G.w_dim)
    d = cache[key]
    d.component(spec.component)   # range check, one line
    return d


def render_edits(G: torch.nn.Module, ws: torch.Tensor, specs: Sequence[EditSpec], noise_mode: str = "const",
                 cache: dict | None = None) -> list[np.ndarray]:
    """Per edit: images [S, N, H, W, C] uint8 of the N latents ws [N, num_ws, w_dim] at each strength."""
    cache = {} if cache is None else cache
    out = []
    for spec in specs:
        d = resolve_direction(spec, G, cache)
        out.append(edit(G, ws, d, spec.strengths, component=spec.component, layers=spec.rows,
                        noise_mode=noise_mode))
    return out


def strip(images: np.ndarray) -> np.ndarray:
    """[S, H, W, C] -> [H, S*W, C]: strengths side by side."""
    return np.concatenate(list(images), axis=1)
