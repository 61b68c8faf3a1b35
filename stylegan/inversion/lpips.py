"""LPIPS (Zhang et al. 2018) as a plain module: a VGG-style trunk whose activations, unit-normalised
over channels and weighted per channel, are the features of the distance.

`LPIPS(images)` maps images [N, 3, H, W] in 0..255 to features [N, F]: each tap t [N, C, h, w] becomes
t / sqrt(sum_C t^2 + eps) * sqrt(lin) / sqrt(h w), flattened, and the taps are concatenated, so the
summed squared difference of two images' features is their LPIPS distance (a lin-weighted, spatially
averaged squared difference). This is the convention of NVIDIA's projector network, which lets any
FeatureNet consumer use it unchanged.

Weights come from the two places users hold them: torchvision's ImageNet VGG16 with the `lpips`
package's linear layers (`from_state_dicts`), and NVIDIA's TorchScript `vgg16.pt`, whose tensors are
read by name without running it (`from_nvidia_vgg16`). A TorchScript module the user trusts to run
is mapped by order and shape and then checked against its own output (`from_torchscript`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F

# lpips's input scaling: images in -1..1, then (x - shift) / scale (close to ImageNet's mean and std).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


@dataclass(frozen=True)
class Trunk:
    """A VGG-style trunk: stages of 3x3 convolutions (padding 1, ReLU after each), a 2x2 pooling between
    stages, and one tap after the last convolution of every stage."""
    stages: tuple[tuple[int, ...], ...]     # output channels of each convolution, per stage
    pool: str = "max"                       # 'max' | 'avg'
    in_channels: int = 3

    def __post_init__(self):
        assert self.pool in ("max", "avg"), self.pool
        assert self.stages and all(self.stages), self.stages

    @property
    def widths(self) -> list[int]:
        """Output channels of every convolution, in order."""
        return [c for stage in self.stages for c in stage]

    @property
    def taps(self) -> list[int]:
        """Channels of every tap."""
        return [stage[-1] for stage in self.stages]

    def conv_shapes(self) -> Iterator[tuple[int, int]]:
        """(out, in) channels of every convolution."""
        cin = self.in_channels
        for cout in self.widths:
            yield cout, cin
            cin = cout

    def torchvision_indices(self) -> list[int]:
        """Index of every convolution in a torchvision `features` Sequential (conv, relu, ..., pool, ...)."""
        out, i = [], 0
        for s, stage in enumerate(self.stages):
            i += s > 0                      # the pooling layer before this stage
            for _ in stage:
                out.append(i)
                i += 2                      # conv, relu
        return out


# VGG16 (configuration D of Simonyan & Zisserman) tapped at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
VGG16 = Trunk(stages=((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)), pool="max")


class LPIPS(torch.nn.Module):
    """Images [N, 3, H, W] float in 0..255 -> LPIPS features [N, F] (see the module docstring).

    `shift`/`scale` apply to images in -1..1; None leaves them there (no further scaling)."""

    def __init__(self, trunk: Trunk = VGG16, shift: Optional[Sequence[float]] = LPIPS_SHIFT,
                 scale: Optional[Sequence[float]] = LPIPS_SCALE, eps: float = 1e-10):
        super().__init__()
        self.trunk, self.eps = trunk, eps
        c = trunk.in_channels
        self.register_buffer("shift", torch.tensor(shift if shift is not None else [0.0] * c, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale if scale is not None else [1.0] * c, dtype=torch.float32))
        assert self.shift.shape == self.scale.shape == (c,)
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(cin, cout, 3, padding=1)
                                         for cout, cin in trunk.conv_shapes())
        for t, ch in enumerate(trunk.taps):
            self.register_buffer(f"lin{t}", torch.ones(ch))

    @property
    def lins(self) -> list[torch.Tensor]:
        return [getattr(self, f"lin{t}") for t in range(len(self.trunk.stages))]

    def tap_sizes(self, height: int, width: int) -> list[int]:
        """Number of features each tap contributes for images of this size (features are in tap order)."""
        sizes = []
        for s, ch in enumerate(self.trunk.taps):
            if s:
                height, width = height // 2, width // 2
            sizes.append(ch * height * width)
        return sizes

    def taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The trunk's activations at its taps, [N, C_t, h_t, w_t] each."""
        assert images.ndim == 4 and images.shape[1] == self.trunk.in_channels, images.shape
        x = images.to(self.shift.dtype) / 127.5 - 1
        x = (x - self.shift.reshape(1, -1, 1, 1)) / self.scale.reshape(1, -1, 1, 1)
        pool = F.max_pool2d if self.trunk.pool == "max" else F.avg_pool2d
        out, convs = [], iter(self.convs)
        for s, stage in enumerate(self.trunk.stages):
            if s:
                x = pool(x, 2)
            for _ in stage:
                x = F.relu(next(convs)(x))
            out.append(x)
        return out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feats = []
        for t, lin in zip(self.taps(images), self.lins):
            t = t / (t.square().sum(dim=1, keepdim=True) + self.eps).sqrt()
            t = t * (lin.sqrt() / math.sqrt(t.shape[2] * t.shape[3])).reshape(1, -1, 1, 1)
            feats.append(t.flatten(1))
        return torch.cat(feats, dim=1)

    @torch.no_grad()
    def load_arrays(self, convs: Sequence[tuple[torch.Tensor, torch.Tensor]], lins: Sequence[torch.Tensor],
                    names: Optional[Sequence[str]] = None) -> "LPIPS":
        """Copy in (weight, bias) per convolution and one lin vector per tap, any shape holding C values
        ([C] or lpips's [1, C, 1, 1]). `names` (weight, bias per convolution, then the lins) are what
        errors say."""
        if len(convs) != len(self.convs) or len(lins) != len(self.trunk.stages):
            raise ValueError(f"expected {len(self.convs)} convolutions and {len(self.trunk.stages)} lin layers, "
                             f"got {len(convs)} and {len(lins)}")
        names = list(names) if names is not None else (
            [f"conv{i}.{p}" for i in range(len(convs)) for p in ("weight", "bias")] +
            [f"lin{t}" for t in range(len(lins))])
        for i, ((w, b), conv) in enumerate(zip(convs, self.convs)):
            _check_shape(names[2 * i], w, conv.weight.shape)
            _check_shape(names[2 * i + 1], b, conv.bias.shape)
            conv.weight.copy_(w)
            conv.bias.copy_(b)
        for t, (lin, mine) in enumerate(zip(lins, self.lins)):
            name = names[2 * len(convs) + t]
            _check_shape(name, lin)
            if lin.numel() != mine.numel() or lin.squeeze().ndim > 1:
                raise ValueError(f"{name}: shape {list(lin.shape)}, expected {mine.numel()} per-channel weights")
            if not bool(torch.isfinite(lin).all()) or bool((lin < 0).any()):
                raise ValueError(f"{name}: lin weights must be finite and non-negative (they weight squared norms)")
            mine.copy_(lin.reshape(-1))
        return self


def _check_shape(name: str, tensor: torch.Tensor, shape=None) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: not a tensor ({type(tensor).__name__})")
    if shape is not None and tuple(tensor.shape) != tuple(shape):
        raise ValueError(f"{name}: shape {list(tensor.shape)}, expected {list(shape)}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name}: dtype {tensor.dtype}, expected floating point")


# ---------------------------------------------------------------------------------------------------
# torchvision VGG16 + lpips linear layers (plain state dicts)

def lin_keys(trunk: Trunk = VGG16) -> list[str]:
    """The `lpips` package's names of its linear layers' weights (a dropout is model.0, the 1x1 conv model.1)."""
    return [f"lin{t}.model.1.weight" for t in range(len(trunk.stages))]


def trunk_keys(trunk: Trunk = VGG16) -> list[str]:
    """torchvision's names of the trunk's convolution weights and biases."""
    return [f"features.{i}.{p}" for i in trunk.torchvision_indices() for p in ("weight", "bias")]


def from_state_dicts(trunk_state: Mapping[str, torch.Tensor], lin_state: Mapping[str, torch.Tensor],
                     trunk: Trunk = VGG16) -> LPIPS:
    """LPIPS from torchvision's VGG16 state dict (`vgg16-397923af.pth`; its classifier head is ignored)
    and the `lpips` package's linear layers (`weights/v0.1/vgg.pth`)."""
    _check_keys("trunk", trunk_state, trunk_keys(trunk), ignore=("classifier.",))
    _check_keys("lin", lin_state, lin_keys(trunk))
    idx = trunk.torchvision_indices()
    convs = [(trunk_state[f"features.{i}.weight"], trunk_state[f"features.{i}.bias"]) for i in idx]
    net = LPIPS(trunk).load_arrays(convs, [lin_state[k] for k in lin_keys(trunk)], trunk_keys(trunk) + lin_keys(trunk))
    return net.eval().requires_grad_(False)


def _check_keys(what: str, state: Mapping, expected: Sequence[str], ignore: Sequence[str] = ()) -> None:
    if not isinstance(state, Mapping):
        raise ValueError(f"{what} weights: expected a state dict, got {type(state).__name__}")
    for k in expected:
        if k not in state:
            raise ValueError(f"{what} weights: missing key {k!r}")
    for k in state:
        if k not in expected and not (isinstance(k, str) and k.startswith(tuple(ignore))):
            raise ValueError(f"{what} weights: unexpected key {k!r}")


# ---------------------------------------------------------------------------------------------------
# NVIDIA's TorchScript vgg16.pt

def nvidia_vgg16_keys(trunk: Trunk = VGG16) -> list[str]:
    """The names `vgg16.pt` gives its trunk's convolutions and its LPIPS weights (its state_dict; the
    file also holds the classifier's layers.fc1-3, which LPIPS does not use)."""
    convs = [f"layers.conv{i + 1}.{p}" for i in range(len(trunk.widths)) for p in ("weight", "bias")]
    return convs + [f"lpips{t}" for t in range(len(trunk.stages))]


def from_nvidia_vgg16(tensors: Mapping[str, torch.Tensor], trunk: Trunk = VGG16) -> LPIPS:
    """Our module holding the tensors of NVIDIA's `vgg16.pt` (the projector's and PPL's network), read
    from the archive by name, never run. Its computation, as the file's publishers describe it: images
    0..255 scaled by ImageNet's mean and std (LPIPS's shift and scale, which are those numbers in -1..1),
    VGG16 with max pooling, the five relu*_3 / relu*_2 taps unit-normalised and weighted by the lpips
    vectors. (NVIDIA's file itself is not available here to run against: the tests check the mapping on
    a TorchScript module of this layout built for them.)"""
    keys = nvidia_vgg16_keys(trunk)
    missing = [k for k in keys if k not in tensors]
    if missing:
        raise ValueError(f"it lacks {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    n = len(trunk.widths)
    convs = [(tensors[keys[2 * i]].float(), tensors[keys[2 * i + 1]].float()) for i in range(n)]
    net = LPIPS(trunk).load_arrays(convs, [tensors[k].float() for k in keys[2 * n:]], keys)
    return net.eval().requires_grad_(False)


def from_torchscript(net: torch.jit.ScriptModule, trunk: Trunk = VGG16, *, check_size: int = 32,
                     warn: bool = True) -> Optional[LPIPS]:
    """Our module holding a TorchScript feature network's tensors, or None where they do not fit.

    The tensors are matched by order and shape: every [O, I, 3, 3] tensor is a convolution, the [O] one
    after it its bias, and the remaining tensors holding exactly the taps' channels are the lin weights.
    Which input scaling the file uses is not in its tensors: each candidate is run against the
    TorchScript's own output on a small random batch and the first that agrees to 1e-4 (relative) is
    kept. A file whose tensors fit but whose output does not is returned as None with one warning."""
    tensors = list(net.state_dict().items())
    convs, rest, i = [], [], 0
    while i < len(tensors):
        t = tensors[i][1]
        nxt = tensors[i + 1][1] if i + 1 < len(tensors) else None
        if t.ndim == 4 and t.shape[2:] == (3, 3) and nxt is not None and nxt.shape == (t.shape[0],):
            convs.append((t, nxt))
            i += 2
        else:
            rest.append(t)
            i += 1
    lins = [t for t in rest if t.is_floating_point() and t.squeeze().ndim <= 1 and t.numel() in trunk.taps]
    if ([tuple(w.shape[:2]) for w, _ in convs] != list(trunk.conv_shapes())
            or [t.numel() for t in lins] != trunk.taps):
        return None
    gen = torch.Generator().manual_seed(0)
    probe = torch.rand([2, trunk.in_channels, check_size, check_size], generator=gen) * 255
    with torch.no_grad():
        want = net(probe.to(convs[0][0].device), resize_images=False, return_lpips=True)
        want = want.float().cpu() if isinstance(want, torch.Tensor) else None
        for shift, scale in ((LPIPS_SHIFT, LPIPS_SCALE), (None, None)) if want is not None else ():
            try:
                mine = LPIPS(trunk, shift, scale).load_arrays([(w.float().cpu(), b.float().cpu()) for w, b in convs],
                                                              [t.float().cpu() for t in lins])
            except ValueError:
                break                                   # e.g. negative lin weights: not LPIPS-shaped
            got = mine(probe)
            if got.shape == want.shape and float((got - want).abs().max()) <= 1e-4 * float(want.abs().max()):
                return mine.eval().requires_grad_(False)
    if warn:
        warnings.warn("the TorchScript feature network's tensors fit our LPIPS module but its output differs; "
                      "running the TorchScript module itself", RuntimeWarning, stacklevel=2)
    return None
