"""Perceptual feature networks for projection: images in 0..255 -> features whose squared
distance, summed, is an LPIPS-style distance.

`load_feature_net` is the one way in: NVIDIA's TorchScript `vgg16.pt`, the `lpips` package's linear
layers with torchvision's VGG16 weights (plain state dicts), by registry name, URL or path. No file
runs: state dicts load with `weights_only=True`, and a TorchScript archive is read as tensors
(loaders/torchscript.py) and recognised by its sha256 as a registry file whose computation our LPIPS
module reproduces. Tensors alone never decide that: two archives with the same tensors can compute
different things (another pooling, another input scaling), so a TorchScript file that is not a known
one is refused, and runs as itself only with `trust_code=True` (`--trust-code`), which executes its
code.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Optional, Union

import torch

from .._errors import first_line
from ..loaders.torchscript import is_torchscript, known_file, load_script_module, read_torchscript
from .lpips import LPIPS, from_nvidia_vgg16, from_state_dicts, from_torchscript

# images [N, 3, H, W] float in 0..255 -> features [N, F]
FeatureNet = Callable[[torch.Tensor], torch.Tensor]

# Registry TorchScript files known by their sha256 -> our module holding their tensors.
KNOWN_TORCHSCRIPT = {"vgg16": from_nvidia_vgg16}

# The name that builds LPIPS from the two registry entries below, as the `lpips` package does.
LPIPS_VGG = "lpips-vgg"
TRUNK_ENTRY = "torchvision-vgg16"
LIN_ENTRY = "lpips-vgg-v0.1"


class TorchScriptFeatures(torch.nn.Module):
    """A TorchScript module called as `net(img, resize_images=False, return_lpips=True)`, the
    interface of NVIDIA's projector network `vgg16.pt`."""

    def __init__(self, net: torch.jit.ScriptModule):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images, resize_images=False, return_lpips=True)


def load_feature_net(source: Union[str, os.PathLike], device: Union[torch.device, str] = "cpu", *,
                     cache_dir: Optional[Union[str, os.PathLike]] = None, progress=True,
                     trust_code: bool = False) -> FeatureNet:
    """A feature network from a registry name, URL or file:

    - 'lpips-vgg': LPIPS v0.1 over torchvision's ImageNet VGG16 (both fetched through the registry;
      the `lpips` package's copy of its layers is used when installed);
    - NVIDIA's TorchScript `vgg16.pt` ('vgg16'), recognised by its sha256: its tensors in our LPIPS
      module, nothing in the file run;
    - any other TorchScript file with the vgg16.pt interface, only with `trust_code=True` (it runs
      the file's code): our LPIPS module when its tensors map onto one and the outputs agree, else
      the TorchScript module itself;
    - a state dict with torchvision's VGG16 keys (features.N.*), the lpips layers (linT.model.1.weight),
      or both: the missing half comes from the registry.

    Raises a one-line ValueError for anything else (UntrustedCodeError for an unknown TorchScript
    file without `trust_code`)."""
    from .. import hub
    text = os.fspath(source)
    if text.strip().lower() == LPIPS_VGG and not Path(text).exists():
        return lpips_vgg16(cache_dir=cache_dir, progress=progress).to(device)
    if hub.is_known(text) and not Path(text).is_file() and hub.lookup(text).kind != "perceptual":
        # Refused before a download: a GAN's name here is a slip, not a feature network.
        known = ", ".join([LPIPS_VGG, *hub.names(kind="perceptual")])
        raise ValueError(f"{text}: a {hub.lookup(text).kind} model, not a perceptual network ({known})")
    path = hub.resolve(text, cache_dir, progress)
    if is_torchscript(path):
        return _torchscript_features(path, device, trust_code)
    state = _load_state_dict(path)
    lin = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("lin")}
    trunk = {k: v for k, v in state.items() if k not in lin}
    if not lin and not any(isinstance(k, str) and k.startswith("features.") for k in trunk):
        raise ValueError(f"{path}: neither TorchScript nor a VGG16 / LPIPS state dict")
    if not lin:
        lin = _load_state_dict(hub.resolve(LIN_ENTRY, cache_dir, progress))
    elif not trunk:
        trunk = _load_state_dict(hub.resolve(TRUNK_ENTRY, cache_dir, progress))
    try:
        return from_state_dicts(trunk, lin).to(device)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def lpips_vgg16(trunk: Union[str, os.PathLike] = TRUNK_ENTRY, lin: Union[str, os.PathLike] = LIN_ENTRY, *,
                cache_dir: Optional[Union[str, os.PathLike]] = None, progress=True) -> LPIPS:
    """LPIPS with torchvision's VGG16 weights and the lpips package's linear layers, each a registry
    name, URL or path of a plain state dict (`vgg16-397923af.pth`, `vgg.pth`)."""
    from .. import hub
    paths = [hub.resolve(os.fspath(s), cache_dir, progress) for s in (trunk, lin)]
    states = [_load_state_dict(p) for p in paths]
    try:
        return from_state_dicts(*states)
    except ValueError as e:
        # Say which file: the messages name the half ('trunk'/'lin') and the key.
        raise ValueError(f"{paths[0]} + {paths[1]}: {e}") from None


def _torchscript_features(path: Path, device: Union[torch.device, str], trust_code: bool) -> FeatureNet:
    """A known TorchScript file as our module (read, never run); any other only on `trust_code`."""
    archive = read_torchscript(path)
    entry = known_file(archive)
    if entry is not None:
        if entry.name not in KNOWN_TORCHSCRIPT:
            raise ValueError(f"{path}: {entry.name}, a {entry.kind} network, not a perceptual one")
        try:
            return KNOWN_TORCHSCRIPT[entry.name](archive.tensors).to(device)
        except ValueError as e:
            raise ValueError(f"{path}: {entry.name} by its digest, but {e}") from None
    net = load_script_module(path, device, trust_code=trust_code)
    try:
        mine = from_torchscript(net)
        if mine is not None:
            return mine.to(device)
        feats = TorchScriptFeatures(net).requires_grad_(False)
        with torch.no_grad():       # the interface checked now, not a thousand steps into a projection
            out = feats(torch.zeros([1, 3, 32, 32], device=device))
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: does not run as net(img, resize_images=False, return_lpips=True) "
                         f"({first_line(e)})") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
        raise ValueError(f"{path}: returns {_describe(out)} for one image, expected features [1, F]")
    return feats


def _load_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    from .._errors import weights_only_refusal
    from ..io.files import check_regular_file
    check_regular_file(path, "a weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:      # a file format boundary: any failure to read is the file's fault
        raise ValueError(f"{path}: not a state dict of tensors ({weights_only_refusal(e) or first_line(e)})") \
            from None
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: not a state dict of tensors (holds a {type(state).__name__})")
    return state


def _describe(x) -> str:
    return f"shape {list(x.shape)}" if isinstance(x, torch.Tensor) else f"a {type(x).__name__}"
