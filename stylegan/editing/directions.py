"""Directions in latent space, as files: our own format, and the formats others share.

A `Direction` holds K unit vectors [K, D] in one space ('w': D = w_dim, applied to chosen ws rows;
's': D = total style channels), optionally each component's standard deviation (so strengths can
be given in std units, as GANSpace does) and the mean the components were centred on. It records
where it came from: method, parameters, the network's digest and dimensions."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._errors import FileError, first_line, int_ranges, NetworkMismatchError, other_network, weights_only_refusal
from ..io.tagged import read_tagged, write_tagged

FORMAT_TAG = "stylegan-direction"
VERSION = 1


@dataclass
class Direction:
    vectors: torch.Tensor                      # [K, D] float32, rows of unit length
    space: str = "w"                           # 'w' | 's'
    method: str = "unknown"                    # 'sefa' | 'ganspace' | 'interfacegan' | 'stylespace' | 'file'
    std: torch.Tensor | None = None            # [K] spread of the latents along each vector
    mean: torch.Tensor | None = None           # [D] the centre the vectors were measured from
    layers: list[int] | None = None            # ws rows the direction is meant for (None: all)
    network_digest: str | None = None
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        # Checked here, whatever made the direction: nan or inf renders black images, a zero vector
        # leaves them unchanged, and both would look like an edit that worked.
        v = torch.as_tensor(_real(self.vectors, "direction vectors"), dtype=torch.float32)
        self.vectors = v[None] if v.ndim == 1 else v
        if self.vectors.ndim != 2 or self.vectors.shape[0] == 0 or self.vectors.shape[1] == 0:
            raise ValueError(f"direction vectors must be [K, D], got {tuple(v.shape)}")
        if self.space not in ("w", "s"):
            raise ValueError(f"unknown direction space {self.space!r}: expected 'w' or 's'")
        if not bool(torch.isfinite(self.vectors).all()):
            raise ValueError("the direction holds nan or inf values")
        zero = (self.vectors.norm(dim=1) == 0).nonzero().flatten().tolist()
        if zero:
            raise ValueError(f"direction component {int_ranges(zero)} is all zeros: it would move nothing")
        for key in ("std", "mean"):
            value = getattr(self, key)
            if value is not None:
                value = torch.as_tensor(_real(value, f"direction {key}"), dtype=torch.float32)
                if not bool(torch.isfinite(value).all()):
                    raise ValueError(f"the direction's {key} holds nan or inf values")
                setattr(self, key, value)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def component(self, k: int) -> torch.Tensor:
        if not 0 <= k < len(self):
            raise ValueError(f"component {k} out of range: the direction file has 0..{len(self) - 1}")
        return self.vectors[k]


def _real(x, what: str):
    """Real numbers only: a complex array cast to float silently drops its imaginary part."""
    if (isinstance(x, torch.Tensor) and x.is_complex()) or (isinstance(x, np.ndarray) and x.dtype.kind == "c"):
        raise ValueError(f"{what} must be real numbers, got {x.dtype}")
    if isinstance(x, np.ndarray) and x.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be numbers, got {x.dtype}")
    return x


def made_for(direction: Direction, G: torch.nn.Module) -> Direction:
    """Stamp the network a direction was found on (its digest and ws row count) on the direction."""
    from torch_utils.misc import network_digest
    direction.network_digest = network_digest(G)
    direction.params["num_ws"] = int(G.num_ws)
    return direction


def check_direction(direction: Direction, G: torch.nn.Module, digest: str | None = None,
                    force: bool = False) -> None:
    """Refuse (one line) a direction that cannot move G's latents, or that was made for another
    network: a recorded digest that is not G's, or ws rows counted on a network with another number
    of them. `force` applies the latter two anyway (a fine-tuned copy of the network, say)."""
    if direction.space == "w" and direction.dim != G.w_dim:
        raise ValueError(f"direction has {direction.dim} dimensions, the network's w has {G.w_dim}")
    if force:
        return
    if direction.network_digest:
        if digest is None:
            from torch_utils.misc import network_digest
            digest = network_digest(G)
        if digest != direction.network_digest:
            raise other_network("the direction was", direction.network_digest, digest)
    rows = direction.params.get("num_ws")
    if direction.space == "w" and direction.layers and isinstance(rows, int) and rows != G.num_ws:
        raise NetworkMismatchError(f"the direction moves ws rows {int_ranges(direction.layers)} of a network with "
                                   f"{rows} rows; this one has {G.num_ws}: pass {{force=True}} to apply it anyway", "force")


def unit_rows(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=1, keepdim=True).clamp(min=1e-12)


def save_direction(direction: Direction, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write a direction as safetensors + JSON metadata, atomically."""
    tensors = {"vectors": direction.vectors}
    for key in ("std", "mean"):
        if getattr(direction, key) is not None:
            tensors[key] = torch.as_tensor(getattr(direction, key), dtype=torch.float32)
    tags = {"space": direction.space, "method": direction.method, "layers": json.dumps(direction.layers),
            "network_digest": direction.network_digest or "", "params": json.dumps(direction.params)}
    return write_tagged(path, tensors, tags, format=FORMAT_TAG, version=VERSION, overwrite=overwrite)


def load_direction(path: str | os.PathLike, w_dim: int | None = None) -> Direction:
    """Read a direction: our format, an InterFaceGAN boundary (.npy [1, D]), a GANSpace .npz
    (lat_comp / lat_mean / lat_stdev), an e4e/PTI .pt (a tensor, or {'comp','std','mean'} as in
    ffhq_pca.pt), or rosinality's SeFa factor.pt ({'eigvec': [D, K]}). Pickled code is never run."""
    from ..io.files import check_regular_file
    path = check_regular_file(path, "a direction file")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        if head.startswith(b"\x93NUMPY"):
            d = _from_npy(np.load(path, allow_pickle=False))
        elif head.startswith(b"PK\x03\x04") and path.suffix == ".npz":
            d = _from_npz(path)
        elif head.startswith(b"PK\x03\x04"):
            from ..loaders.torchscript import is_torchscript
            if is_torchscript(path):   # code, not data: torch.load would hand it to torch.jit.load
                raise ValueError("a TorchScript module, not a direction file")
            d = _from_torch(torch.load(path, map_location="cpu", weights_only=True))
        elif head[8:9] == b"{":                            # safetensors: u64 header size, then JSON
            d = _from_native(path)
        else:
            raise ValueError("not a direction file (expected .npy, .npz, .pt or a stylegan direction)")
    except FileError:       # names the file already
        raise
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    except Exception as e:  # damage surfaces as many error types; say it in one line
        reason = weights_only_refusal(e) or f"{type(e).__name__}: {first_line(e)}"
        raise ValueError(f"{path}: not a readable direction file ({reason})") from None
    if w_dim is not None and d.space == "w" and d.dim != w_dim:
        raise ValueError(f"{path}: direction has {d.dim} dimensions, the network's w has {w_dim}")
    return d


def _from_native(path: Path) -> Direction:
    file = read_tagged(path, format=FORMAT_TAG, version=VERSION, what="stylegan direction file")
    meta, t = file.tags, file.tensors
    return Direction(t["vectors"], meta["space"], meta["method"], t.get("std"), t.get("mean"),
                     json.loads(meta.get("layers", "null")), meta.get("network_digest") or None,
                     json.loads(meta.get("params", "{}")))


def _from_npy(a: np.ndarray) -> Direction:
    """InterFaceGAN boundaries are [1, D] unit normals; accept [D] and [K, D] too."""
    a = np.asarray(_real(a, "a .npy direction"), dtype=np.float32)
    if a.ndim not in (1, 2):
        raise ValueError(f"a .npy direction must be [D] or [K, D], got {a.shape}")
    return Direction(unit_rows(torch.from_numpy(a.reshape(-1, a.shape[-1]))), method="file",
                     params={"source": "npy"})


def _from_npz(path: Path) -> Direction:
    with np.load(path, allow_pickle=False) as z:
        if "lat_comp" not in z.files:
            raise ValueError(f"an .npz without GANSpace's lat_comp (keys: {', '.join(z.files) or 'none'})")
        comp = _real(z["lat_comp"], "lat_comp").reshape(z["lat_comp"].shape[0], -1)
        std = _real(z["lat_stdev"], "lat_stdev").reshape(-1) if "lat_stdev" in z.files else None
        mean = _real(z["lat_mean"], "lat_mean").reshape(-1) if "lat_mean" in z.files else None
    return Direction(unit_rows(torch.from_numpy(comp.astype(np.float32))), method="ganspace",
                     std=None if std is None else torch.from_numpy(std.astype(np.float32)),
                     mean=None if mean is None else torch.from_numpy(mean.astype(np.float32)),
                     params={"source": "ganspace npz"})


def _from_torch(obj) -> Direction:
    for value in (obj.values() if isinstance(obj, dict) else [obj]):
        _real(value, "a direction tensor")
    if isinstance(obj, torch.Tensor):
        return Direction(unit_rows(obj.float().reshape(-1, obj.shape[-1])), method="file", params={"source": "pt"})
    if isinstance(obj, dict) and "eigvec" in obj:                       # rosinality's SeFa factor.pt
        eig = obj["eigvec"].float()
        return Direction(unit_rows(eig.t().contiguous()), method="sefa", params={"source": "rosinality factor.pt"})
    if isinstance(obj, dict) and "comp" in obj:                          # e4e's ffhq_pca.pt
        comp = obj["comp"].float()
        return Direction(unit_rows(comp.reshape(comp.shape[0], -1)), method="ganspace",
                         std=obj["std"].float().reshape(-1) if "std" in obj else None,
                         mean=obj["mean"].float().reshape(-1) if "mean" in obj else None,
                         params={"source": "e4e pca.pt"})
    raise ValueError("a torch file, but neither a direction tensor, a SeFa factor nor a PCA dict")


def cosine(a: Direction, b: Direction, ka: int = 0, kb: int = 0) -> float:
    """Cosine between component ka of a and component kb of b (same space and size)."""
    if a.space != b.space or a.dim != b.dim:
        raise ValueError(f"cannot compare a {a.space}[{a.dim}] direction with a {b.space}[{b.dim}] one")
    return float(torch.nn.functional.cosine_similarity(a.component(ka), b.component(kb), dim=0))
