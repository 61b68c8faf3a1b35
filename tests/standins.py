"""Stand-ins for the feature networks that have no weights here, built from the fixture arrays
(reference README): the projector's LPIPS stand-in as a plain module and as our LPIPS class."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from conftest import load_npz
from stylegan.inversion.lpips import LPIPS, Trunk

# The stand-in's architecture as the reference README describes it.
STANDIN = Trunk(stages=((16, 16), (32,), (32,)), pool="avg")


class StandinFeatures(torch.nn.Module):
    """The fixture's stand-in feature network, rebuilt from its arrays as the README describes."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        super().__init__()
        for k, v in arrays.items():
            self.register_buffer(k, torch.from_numpy(v))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img / 127.5 - 1
        x = F.relu(F.conv2d(x, self.w0, self.b0, padding=1))
        t0 = F.relu(F.conv2d(x, self.w1, self.b1, padding=1))
        t1 = F.relu(F.conv2d(F.avg_pool2d(t0, 2), self.w2, self.b2, padding=1))
        t2 = F.relu(F.conv2d(F.avg_pool2d(t1, 2), self.w3, self.b3, padding=1))
        out = []
        for t, lin in zip((t0, t1, t2), (self.lin0, self.lin1, self.lin2)):
            t = t / (t.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
            t = t * lin.sqrt().reshape(1, -1, 1, 1) / np.sqrt(t.shape[2] * t.shape[3])
            out.append(t.flatten(1))
        return torch.cat(out, dim=1)


def standin_lpips() -> LPIPS:
    """Our module holding the stand-in's arrays (lpips_standin.npz): images go to -1..1 and no further."""
    a = {k: torch.from_numpy(v) for k, v in load_npz("lpips_standin").items()}
    net = LPIPS(STANDIN, shift=None, scale=None)
    return net.load_arrays([(a[f"w{i}"], a[f"b{i}"]) for i in range(4)], [a[f"lin{t}"] for t in range(3)])\
        .eval().requires_grad_(False)
