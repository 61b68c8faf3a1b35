"""rosinality/stylegan2-pytorch checkpoints (torch.save zip files) -> our StyleGAN2 generator.

Both implementations compute the same network; only names and a few layouts differ (a leading
batch axis on conv weights and noise maps, ToRGB bias as [1, C, 1, 1]). Blur kernels are not
copied: ours are built from the same [1, 3, 3, 1] taps with the gain applied at use."""
from __future__ import annotations

import argparse
import re
import zipfile

import numpy as np
import torch

from .kwargs import canonical_kwargs
from .limits import Budget
from .spec import NetSpec

LAYER_FIELDS = {"conv.weight": "weight", "conv.modulation.weight": "affine.weight",
                "conv.modulation.bias": "affine.bias", "noise.weight": "noise_strength",
                "activate.bias": "bias", "bias": "bias"}


def read_checkpoint(path, budget: Budget | None = None) -> dict:
    """torch.load with weights_only; training checkpoints also hold an argparse.Namespace of options,
    the one class allowed beyond plain tensors and containers."""
    if budget is not None:
        _check_archive(path, budget)
    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    _check_tensors(ckpt, budget)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("g_ema", ckpt.get("g")), dict):
        keys = ", ".join(sorted(map(str, ckpt))[:8]) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"a torch checkpoint, but not a rosinality StyleGAN2 one (no 'g_ema' state dict; has {keys})")
    return ckpt


def _check_archive(path, budget: Budget) -> None:
    # torch.load reads each record whole: compressed records must not unpack to more than the budget.
    with zipfile.ZipFile(path) as z:
        budget.charge(sum(info.file_size for info in z.infolist()), "the checkpoint's unpacked records")


def _check_tensors(obj, budget: Budget | None) -> None:
    """Refuse tensors larger than their storage (a zero stride repeats one element without bound), and
    charge every tensor to the budget: one storage listed under many names is counted each time,
    since converting may copy each."""
    seen, todo = set(), [obj]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            held = obj.untyped_storage().nbytes() // max(obj.element_size(), 1)
            if obj.numel() > held:
                raise ValueError(f"a tensor of shape {list(obj.shape)} reaches past its storage of {held} elements")
            if budget is not None:
                budget.charge(obj.numel() * obj.element_size(), "the checkpoint's tensors")
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            todo.extend(obj)


def layer_names(n_mlp: int, num_up: int) -> list[str]:
    """Every tensor a rosinality generator with these sizes holds (blur kernels aside)."""
    conv = ["conv.weight", "conv.modulation.weight", "conv.modulation.bias", "noise.weight", "activate.bias"]
    rgb = ["conv.weight", "conv.modulation.weight", "conv.modulation.bias", "bias"]
    names = [f"style.{i}.{f}" for i in range(1, n_mlp + 1) for f in ("weight", "bias")] + ["input.input"]
    names += [f"conv1.{f}" for f in conv] + [f"to_rgb1.{f}" for f in rgb]
    names += [f"convs.{i}.{f}" for i in range(2 * num_up) for f in conv]
    names += [f"to_rgbs.{k}.{f}" for k in range(num_up) for f in rgb]
    return names + [f"noises.noise_{i}" for i in range(2 * num_up + 1)]


def check_generator(g: dict, key: str = "g_ema") -> None:
    """Name the tensors a generator state dict lacks, or that are not tensors."""
    n_mlp = max(1, sum(1 for k in g if re.fullmatch(r"style\.\d+\.weight", str(k))))
    num_up = sum(1 for k in g if re.fullmatch(r"to_rgbs\.\d+\.bias", str(k)))
    missing = [k for k in layer_names(n_mlp, num_up) if k not in g]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise ValueError(f"'{key}' is not a complete rosinality generator: it lacks {shown}")
    wrong = [str(k) for k, v in g.items() if not isinstance(v, torch.Tensor)]
    if wrong:
        raise ValueError(f"'{key}' entry {wrong[0]!r} is not a tensor")


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
    try:
        return _generator_kwargs(g)
    except IndexError:
        raise ValueError("tensor shapes do not form a rosinality generator") from None


def _generator_kwargs(g: dict[str, torch.Tensor]) -> dict:
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
        if not isinstance(g, dict):
            raise ValueError(f"'{src}' is a {type(g).__name__}, not a state dict")
        check_generator(g, src)
        kwargs = canonical_kwargs("stylegan2", generator_kwargs(g))
        sd = rename(g)
        latent_avg = ckpt.get("latent_avg") if key == "G_ema" else None
        if latent_avg is not None and (not isinstance(latent_avg, torch.Tensor) or latent_avg.numel() != kwargs["w_dim"]):
            raise ValueError(f"latent_avg does not match the generator's w_dim {kwargs['w_dim']}")

        def params(module, sd=sd, latent_avg=latent_avg):
            full = dict(module.state_dict())
            full.update(sd)
            if latent_avg is not None:
                full["mapping.w_avg"] = latent_avg.reshape(-1).float()
            return full
        out[key] = NetSpec("stylegan2", kwargs, params, post=None if latent_avg is not None else _set_w_avg)
    return out
