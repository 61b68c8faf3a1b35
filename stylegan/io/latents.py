"""Latents as files: safetensors + JSON metadata, and the formats others share.

Our format stores `ws` ([N, w_dim] in 'w', [N, num_ws, w_dim] in 'w+') or the styles of each layer
('s': one tensor per style layer, [N, channels]) with what made them: the network's digest, the
truncation psi, the source (seed, photo, projection). It also reads NVIDIA's projector output
`projected_w.npz` (key 'w', [1, num_ws, w_dim]), plain `.npy` arrays and the per-seed
`seedNNNN.w.npy` files ([num_ws, w_dim]) that `generate --save-w` wrote before this format."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._errors import FileError, first_line, other_network
from .tagged import read_tagged, write_tagged

FORMAT_TAG = "stylegan-latent"
VERSION = 1
SPACES = ("w", "w+", "s")
_OLD_SEED_W = re.compile(r"^seed\d+\.w\.npy$")   # one seed's ws, [num_ws, w_dim]


@dataclass
class Latents:
    ws: torch.Tensor | None                     # 'w': [N, w_dim]; 'w+': [N, num_ws, w_dim]; 's': None
    space: str = "w+"
    styles: dict[str, torch.Tensor] | None = None   # 's': {layer name: [N, channels]}
    network_digest: str | None = None
    psi: float | None = None
    source: str | None = None
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ws) if self.ws is not None else len(next(iter(self.styles.values())))


def _check(latents: Latents) -> None:
    if latents.space not in SPACES:
        raise ValueError(f"unknown latent space {latents.space!r}: expected one of {', '.join(SPACES)}")
    if latents.space == "s":
        if not latents.styles:
            raise ValueError("'s' latents need styles {layer name: [N, channels]}")
        sizes = {v.shape[0] for v in latents.styles.values()}
        if len(sizes) != 1 or any(v.ndim != 2 for v in latents.styles.values()):
            raise ValueError("styles must all be [N, channels] with one N")
        return
    want = 2 if latents.space == "w" else 3
    if latents.ws is None or latents.ws.ndim != want:
        shape = None if latents.ws is None else tuple(latents.ws.shape)
        raise ValueError(f"'{latents.space}' latents must have {want} dimensions, got {shape}")


def save_latents(path: str | os.PathLike, ws: torch.Tensor | dict | None = None, *, space: str = "w+",
                 network_digest: str | None = None, psi: float | None = None, source: str | None = None,
                 extra: dict | None = None, overwrite: bool = False) -> Path:
    """Write latents atomically; never replaces a file unless `overwrite`. For space 's', `ws` is
    the styles dict."""
    path = Path(path)
    styles = ws if isinstance(ws, dict) else None
    latents = Latents(None if styles is not None else torch.as_tensor(ws), space, styles, network_digest, psi,
                      source, dict(extra or {}))
    _check(latents)
    try:
        extra_json = json.dumps(extra or {})
    except (TypeError, ValueError) as e:
        raise ValueError(f"latent metadata must be JSON values: {e}") from None
    tensors = ({f"s.{k}": v.detach().float() for k, v in styles.items()} if styles is not None
               else {"ws": latents.ws.detach().float()})
    tags = {"space": space, "network_digest": network_digest or "", "psi": "" if psi is None else repr(float(psi)),
            "source": source or "", "metadata": extra_json,
            "style_layers": json.dumps(list(styles)) if styles is not None else "[]"}
    return write_tagged(path, tensors, tags, format=FORMAT_TAG, version=VERSION, overwrite=overwrite)


def load_latents(path: str | os.PathLike, num_ws: int | None = None, w_dim: int | None = None) -> Latents:
    """Read our latent files, NVIDIA's projected_w.npz, or a .npy array ([w_dim], [N, w_dim],
    [num_ws, w_dim] or [N, num_ws, w_dim]).

    A 2-D array is one w+ ([num_ws, w_dim]) when `num_ws` is given and matches, or when the file is
    an older `seedNNNN.w.npy`; otherwise it is N w's. `num_ws` / `w_dim`, when given, are what the
    caller's network expects: w+ latents with another row count, or any with another width, are
    refused here, naming the file. Every bad file gives a one-line ValueError naming it."""
    from .files import check_regular_file
    path = check_regular_file(path, "a latent file")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        if head.startswith(b"\x93NUMPY"):
            rows = -1 if _OLD_SEED_W.match(path.name) else num_ws
            latents = _from_array(np.load(path, allow_pickle=False), rows, f"npy:{path.name}")
        elif head.startswith(b"PK\x03\x04"):
            with np.load(path, allow_pickle=False) as z:
                if "w" not in z.files:
                    raise ValueError(f"an .npz without NVIDIA's 'w' array (keys: {', '.join(z.files) or 'none'})")
                latents = _from_array(z["w"], num_ws, f"projected_w:{path.name}")
        elif head[8:9] == b"{":
            latents = _from_native(path)
        else:
            raise ValueError("not a latent file (expected a stylegan latent, projected_w.npz or .npy)")
        _check_values(latents, num_ws, w_dim)
        return latents
    except FileError:       # names the file already
        raise
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # damage surfaces as many error types; say it in one line
        raise ValueError(f"{path}: not a readable latent file ({type(e).__name__}: {first_line(e)})") from None


def _from_array(a: np.ndarray, num_ws: int | None, source: str) -> Latents:
    """num_ws -1: a 2-D array is one w+ whatever its row count (an older seedNNNN.w.npy)."""
    if a.dtype.kind != "f":
        raise ValueError(f"latents must be floating point, got {a.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    if t.ndim == 1:
        return Latents(t[None], "w", source=source)
    if t.ndim == 2:
        if num_ws == -1 or (num_ws is not None and t.shape[0] == num_ws):
            return Latents(t[None], "w+", source=source)
        return Latents(t, "w", source=source)
    if t.ndim == 3:
        return Latents(t, "w+", source=source)
    raise ValueError(f"latents must have 1 to 3 dimensions, got shape {tuple(t.shape)}")


def _check_values(latents: Latents, num_ws: int | None, w_dim: int | None) -> None:
    """Shapes against what the caller expects, and finite values (nan or inf renders blank images)."""
    tensors = list(latents.styles.values()) if latents.space == "s" else [latents.ws]
    if latents.space != "s":
        if not all(latents.ws.shape):
            raise ValueError(f"empty latents, shape {tuple(latents.ws.shape)}")
        if w_dim is not None and latents.ws.shape[-1] != w_dim:
            raise ValueError(f"latents have w_dim {latents.ws.shape[-1]}, expected {w_dim}")
        if num_ws is not None and latents.space == "w+" and latents.ws.shape[1] != num_ws:
            raise ValueError(f"latents have {latents.ws.shape[1]} ws rows, expected {num_ws}")
    if not all(torch.isfinite(t).all() for t in tensors):
        raise ValueError("latents hold nan or inf values")


def _from_native(path: Path) -> Latents:
    file = read_tagged(path, format=FORMAT_TAG, version=VERSION, what="stylegan latent file")
    meta, tensors = file.tags, file.tensors
    space = meta.get("space", "")
    psi = float(meta["psi"]) if meta.get("psi") else None
    common = dict(network_digest=meta.get("network_digest") or None, psi=psi, source=meta.get("source") or None,
                  metadata=json.loads(meta.get("metadata") or "{}"))
    if space == "s":
        order = json.loads(meta.get("style_layers", "[]"))
        latents = Latents(None, "s", {k: tensors[f"s.{k}"] for k in order}, **common)
    else:
        latents = Latents(tensors.get("ws"), space, **common)
    _check(latents)
    return latents


def check_compatible(latents: Latents, G: torch.nn.Module, digest: str | None = None,
                     force: bool = False) -> list[str]:
    """Raise a one-line ValueError when the latents cannot drive G (w_dim, num_ws, style layers),
    and a NetworkMismatchError naming both digests when they were made with another network (the
    one they record, or one of the `network_digests` in their metadata, such as the tuned copy that
    projection with pivotal tuning saves beside them).

    `force` applies latents of another network anyway (a fine-tuned copy, a converted file): the
    difference comes back as a warning for the caller to show. `digest` is G's, if already known;
    else it is computed when the latents record one."""
    if latents.space == "s":
        # The network describes its own style layers; io stays below networks (hub writes through it).
        want = {layer.name: layer.channels for layer in G.synthesis.style_layers()}
        got = {k: v.shape[1] for k, v in latents.styles.items()}
        if got != want:
            raise ValueError("the styles do not match this network's style layers")
    else:
        if latents.ws.shape[-1] != G.w_dim:
            raise ValueError(f"latents have w_dim {latents.ws.shape[-1]}, the network {G.w_dim}")
        if latents.space == "w+" and latents.ws.shape[1] != G.num_ws:
            raise ValueError(f"latents have {latents.ws.shape[1]} ws rows, the network {G.num_ws}")
    if latents.network_digest and digest is None:
        from torch_utils.misc import network_digest
        digest = network_digest(G)
    also = latents.metadata.get("network_digests") if isinstance(latents.metadata, dict) else None
    known = {latents.network_digest, *(also if isinstance(also, list) else [])}
    if digest and latents.network_digest and digest not in known:
        if not force:
            raise other_network("the latents were", latents.network_digest, digest)
        return [f"the latents were made with another network ({latents.network_digest[:12]}, "
                f"this one is {digest[:12]})"]
    return []
