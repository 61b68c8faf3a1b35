"""The networks a server offers: those named on its command line, loaded once, with their caches.

A page names a network by its short name, never by a path: the server only ever loads what the
person who started it chose. Each network keeps what a live page asks for again and again: the
mapped w of recent seeds, its directions (SeFa per band, GANSpace, files from the registry) and
its style table."""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..editing.sefa import PRESETS, preset_rows
from ..networks.styles import style_layers
from ..pipelines import map_seeds
from ..pipelines.generate import input_transform
from ..provenance import Provenance, source_name

# Mapped w of this many (seed, psi, class) per network: a seed slider's whole neighbourhood.
WS_CACHE_SIZE = 512


@dataclass
class ServedNetwork:
    name: str                         # what the page calls it
    source: str                       # as given on the command line: what the CLI commands name
    G: torch.nn.Module
    D: torch.nn.Module | None = None
    digest: str = ""
    registry_name: str | None = None  # the `stylegan models` name it was loaded by, if any
    untrained: bool = False           # an architecture name's random weights: its faces are noise
    directions: dict = field(default_factory=dict)       # resolve_direction's cache: SeFa, GANSpace, registry
    _ws: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _ws_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _posed: torch.nn.Module | None = field(default=None, repr=False)
    _description: dict | None = field(default=None, repr=False)

    @property
    def stylegan3(self) -> bool:
        return hasattr(getattr(self.G.synthesis, "input", None), "transform")

    def seed_ws(self, seed: int, psi: float, class_idx: int | None) -> torch.Tensor:
        """[1, num_ws, w_dim]: `map_seeds` for one seed, remembered."""
        key = (int(seed), float(psi), class_idx)
        with self._ws_lock:
            if key in self._ws:
                self._ws.move_to_end(key)
                return self._ws[key]
        with torch.no_grad():
            ws = map_seeds(self.G, [seed], psi, class_idx=class_idx)
        with self._ws_lock:
            self._ws[key] = ws
            while len(self._ws) > WS_CACHE_SIZE:
                self._ws.popitem(last=False)
        return ws

    @contextmanager
    def posed(self, transform: np.ndarray | None):
        """G rendering through StyleGAN3's input `transform`. A private copy carries the transform,
        so G itself, which projections copy from other threads, never changes. Only the render
        thread calls this."""
        if transform is None:
            yield self.G
            return
        if self._posed is None:
            self._posed = copy.deepcopy(self.G)
        with input_transform(self._posed, transform) as G:
            yield G

    def provenance(self, base: Provenance) -> Provenance:
        """`base` (watermark, signer) with this network's digest and name, as the CLI's images have them."""
        return base.with_(network=self.digest, network_source=source_name(self.source))

    def band_rows(self, band: str) -> list[int]:
        return preset_rows(band, self.G.num_ws)

    def describe(self) -> dict:
        """What the page needs to build its controls: sizes, classes, bands and the style table."""
        if self._description is None:
            G = self.G
            layers = style_layers(G)
            rows = [{"index": i, "layers": [l.name for l in layers if l.ws_index == i]} for i in range(G.num_ws)]
            bands = {}
            for band in PRESETS:
                try:
                    bands[band] = self.band_rows(band)
                except ValueError:
                    pass                       # a small network has no 'fine' rows
            self._description = {
                "name": self.name, "source": self.source, "resolution": G.img_resolution, "num_ws": G.num_ws,
                "w_dim": G.w_dim, "c_dim": G.c_dim, "stylegan3": self.stylegan3, "digest": self.digest,
                "discriminator": self.D is not None, "rows": rows, "bands": bands,
                "style_channels": sum(l.channels for l in layers), "registry": self.registry_name,
                "title": G.describe().title, "untrained": self.untrained}
        return self._description


def short_names(sources: Sequence[str]) -> list[str]:
    """A unique short name per source: the file's stem, or the registry name ('a', 'a-2', ...)."""
    names: list[str] = []
    for source in sources:
        base = Path(source).name.split(".")[0] or str(source)
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def load_networks(sources: Sequence[str], device: torch.device | str = "cpu",
                  untrained: bool = False) -> list[ServedNetwork]:
    """Load every network named on the command line (path, URL or `stylegan models` name; with
    `untrained`, an architecture name gives random weights, as the command line's `--network` does)."""
    from torch_utils.misc import network_digest
    from .. import hub
    from ..loaders import load
    out = []
    for name, source in zip(short_names(sources), sources):
        nets = load(source, device=device, untrained=untrained)
        G = nets.generator
        D = nets["D"] if "D" in nets else None
        registry = hub.lookup(source).name if not Path(source).exists() and hub.is_known(source) else None
        out.append(ServedNetwork(name, str(source), G, D, network_digest(G), registry,
                                 untrained=nets.format == "untrained"))
    return out


def served(name: str, G: torch.nn.Module, D: torch.nn.Module | None = None, source: str | None = None) -> ServedNetwork:
    """A network built in Python (e.g. `stylegan.create_model`) offered under `name`."""
    from torch_utils.misc import network_digest
    return ServedNetwork(name, source or name, G.eval().requires_grad_(False), D, network_digest(G))
