"""Perceptual feature networks for projection: images in 0..255 -> features whose squared
distance, summed, is an LPIPS-style distance."""
from __future__ import annotations

import os
from typing import Callable

import torch

# images [N, 3, H, W] float in 0..255 -> features [N, F]
FeatureNet = Callable[[torch.Tensor], torch.Tensor]


class TorchScriptFeatures(torch.nn.Module):
    """A TorchScript module called as `net(img, resize_images=False, return_lpips=True)`, the
    interface of NVIDIA's projector network `vgg16.pt`.

    TorchScript is a restricted language run by torch's interpreter, not Python: loading it cannot
    import modules or call arbitrary functions the way unpickling can."""

    def __init__(self, net: torch.jit.ScriptModule):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images, resize_images=False, return_lpips=True)


def load_feature_net(path: str | os.PathLike, device: torch.device | str = "cpu") -> FeatureNet:
    """A feature network from a TorchScript file with the vgg16.pt interface."""
    try:
        net = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{path}: not a TorchScript feature network ({first})") from None
    return TorchScriptFeatures(net.eval()).requires_grad_(False)
