"""What a network says about itself: the facts `stylegan info` prints and the kernels its forward pass
runs, so that the command line never reads a network's internals."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .styles import style_layers


@dataclass(frozen=True)
class Description:
    kind: str                           # 'generator' | 'discriminator'
    title: str                          # 'StyleGAN3-T generator', 'StyleGAN2 discriminator (resnet)', ...
    resolution: int
    channels: int
    dims: dict[str, int]                # generator: z_dim, w_dim, c_dim, num_ws; discriminator: c_dim
    parameters: int
    style_layers: int = 0               # generators: layers with a style input, and their channels together
    style_channels: int = 0
    cuda_kernels: tuple[str, ...] = ()  # fused CUDA kernels its forward pass runs (names in ops.CUDA_OPS)
    cpu_kernels: tuple[str, ...] = ()   # compiled CPU kernels its float32 inference runs (names in ops.CPU_OPS)

    def lines(self) -> list[str]:
        """'StyleGAN2 generator (skip), 32x32x3, z_dim 64, ..., 1,234 parameters', then the style space
        of a generator, then the kernels."""
        dims = ", ".join(f"{k} {v}" for k, v in self.dims.items())
        out = [f"{self.title}, {self.resolution}x{self.resolution}x{self.channels}, {dims}, "
               f"{self.parameters:,} parameters"]
        if self.kind == "generator":
            out.append(f"{self.style_layers} style layers, {self.style_channels:,} style channels")
        cpu = ", ".join(self.cpu_kernels) or "none"
        out.append(f"kernels: CUDA {', '.join(self.cuda_kernels) or 'none'}; CPU {cpu}")
        return out


def describe_generator(G: torch.nn.Module, title: str, cuda_kernels: tuple[str, ...],
                       cpu_kernels: tuple[str, ...]) -> Description:
    layers = style_layers(G)
    return Description("generator", title, G.img_resolution, G.img_channels,
                       {"z_dim": G.z_dim, "w_dim": G.w_dim, "c_dim": G.c_dim, "num_ws": G.num_ws},
                       _parameters(G), len(layers), sum(layer.channels for layer in layers),
                       cuda_kernels, cpu_kernels)


def describe_discriminator(D: torch.nn.Module, title: str, cuda_kernels: tuple[str, ...]) -> Description:
    return Description("discriminator", title, D.img_resolution, D.img_channels, {"c_dim": D.c_dim},
                       _parameters(D), cuda_kernels=cuda_kernels)


def _parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
