"""rosinality/stylegan2-pytorch checkpoints (torch.save zip files) -> our StyleGAN2 generator.

Both implementations compute the same network; only names and a few layouts differ (a leading
batch axis on conv weights and noise maps, ToRGB bias as [1, C, 1, 1]). Blur kernels are not
copied: ours are built from the same [1, 3, 3, 1] taps with the gain applied at use."""
from __future__ import annotations

import argparse
import re

import numpy as np
import torch

from .spec import NetSpec

LAYER_FIELDS = {"conv.weight": "weight", "conv.modulation.weight": "affine.weight",
                "conv.modulation.bias": "affine.bias", "noise.weight": "noise_strength",
                "activate.bias": "bias", "bias": "bias"}


def read_checkpoint(path) -> dict:
    """torch.load with weights_only; training checkpoints also hold an argparse.Namespace of options,
    the one class allowed beyond plain tensors and containers."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema", ckpt.get("g")), dict):
        raise ValueError("a torch checkpoint, but not a rosinality StyleGAN2 one (no 'g_ema' state dict)")
    return ckpt


def _nvidia_layer(prefix: str) -> tuple[str, int] | None:
    """rosinality layer prefix -> (NVIDIA layer prefix, noise index)."""
    if prefix == "conv1":
        return "synthesis.b4.conv1", 0
    if prefix == "to_rgb1":
        return "synthesis.b4.torgb", -1
    if m := re.fullmatch(r"convs\.(\d+)", prefix):
        i = int(m[1])
        return f"synthesis.b{2 ** (i // 2 + 3)}.conv{i % 2}", i + 1
    if m := re.fullmatch(r"to_rgbs\.(\d+)", prefix):
        return f"synthesis.b{2 ** (int(m[1]) + 3)}.torgb", -1
    return None


def rename(g: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """rosinality g_ema names -> NVIDIA names (noise_const filled from `noises.noise_k`)."""
    out = {}
    for name, t in g.items():
        if m := re.fullmatch(r"style\.(\d+)\.(weight|bias)", name):
            out[f"mapping.fc{int(m[1]) - 1}.{m[2]}"] = t
        elif name == "input.input":
            out["synthesis.b4.const"] = t[0]
        elif name.startswith("noises."):
            continue
        elif name.endswith(("blur.kernel", "upsample.kernel")):
            continue
        else:
            prefix, field = _split_layer(name)
            layer = _nvidia_layer(prefix)
            if layer is None or field not in LAYER_FIELDS:
                raise ValueError(f"unexpected tensor {name!r} in the generator")
            nv, noise_idx = layer
            if field == "conv.weight":
                t = t[0]
            elif field == "noise.weight":
                t = t.reshape([])
            elif field == "bias":
                t = t.reshape(-1)
            out[f"{nv}.{LAYER_FIELDS[field]}"] = t
            if field == "noise.weight":
                out[f"{nv}.noise_const"] = g[f"noises.noise_{noise_idx}"][0, 0]
    return out


def _split_layer(name: str) -> tuple[str, str]:
    m = re.fullmatch(r"((?:convs|to_rgbs)\.\d+|conv1|to_rgb1)\.(.+)", name)
    if not m:
        raise ValueError(f"unexpected tensor {name!r} in the generator")
    return m[1], m[2]


def channel_rule(channels: dict[int, int]) -> tuple[int, int]:
    """(channel_base, channel_max) with min(base // r, max) == channels[r] for every r, or an error."""
    cmax = max(channels.values())
    below = [r for r in sorted(channels) if channels[r] < cmax]
    base = channels[below[0]] * below[0] if below else cmax * max(channels)
    if any(min(base // r, cmax) != c for r, c in channels.items()):
        raise ValueError(f"unsupported channel table {dict(sorted(channels.items()))}: "
                         "no channel_base/channel_max reproduces it")
    return base, cmax


def generator_kwargs(g: dict[str, torch.Tensor]) -> dict:
    n_mlp = sum(1 for k in g if re.fullmatch(r"style\.\d+\.weight", k))
    w_dim = g["style.1.weight"].shape[0]
    num_up = sum(1 for k in g if re.fullmatch(r"to_rgbs\.\d+\.bias", k))
    resolution = 4 * 2 ** num_up
    channels = {4: g["input.input"].shape[1]}
    channels.update({2 ** (k + 3): g[f"convs.{2 * k}.conv.weight"].shape[1] for k in range(num_up)})
    base, cmax = channel_rule(channels)
    return dict(z_dim=w_dim, c_dim=0, w_dim=w_dim, img_resolution=resolution,
                img_channels=g["to_rgb1.conv.weight"].shape[1], channel_base=base, channel_max=cmax,
                num_fp16_res=0, conv_clamp=None, architecture="skip",
                mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=0.01))


def _set_w_avg(G: torch.nn.Module, n: int = 4096) -> None:
    """Training checkpoints store no average w for truncation: estimate it from n fixed latents."""
    z = torch.from_numpy(np.random.RandomState(0).randn(n, G.z_dim)).float()
    with torch.no_grad():
        G.mapping.w_avg.copy_(G.mapping(z, None).mean(dim=(0, 1)))


def convert(ckpt: dict) -> dict[str, NetSpec]:
    out = {}
    for src, key in (("g_ema", "G_ema"), ("g", "G")):
        if src not in ckpt:
            continue
        g = ckpt[src]
        kwargs = generator_kwargs(g)
        sd = rename(g)
        latent_avg = ckpt.get("latent_avg") if key == "G_ema" else None

        def params(module, sd=sd, latent_avg=latent_avg):
            full = dict(module.state_dict())
            full.update(sd)
            if latent_avg is not None:
                full["mapping.w_avg"] = latent_avg.reshape(-1).float()
            return full
        out[key] = NetSpec("stylegan2", kwargs, params, post=None if latent_avg is not None else _set_w_avg)
    return out
