"""TF-era StyleGAN2 pickles: a (G, D, Gs) tuple of dnnlib.tflib Network states -> our modules.

TF stores conv weights as [kh, kw, in, out], dense weights as [in, out], the style bias as an
offset from 1, and the upsampling conv kernel in the opposite spatial orientation; the rules below
undo that, exactly as NVIDIA's own converter does."""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from .kwargs import canonical_kwargs
from .safe_pickle import TFNetwork
from .spec import NetSpec


def _kwarg_reader(static_kwargs: dict):
    known: set[str] = set()

    def kwarg(name: str, default: Any = None, none: Any = None) -> Any:
        known.add(name)
        value = static_kwargs.get(name, default)
        return value if value is not None else none

    def check(*ignored: str) -> None:
        known.update(ignored)
        unknown = sorted(set(static_kwargs) - known)
        if unknown:
            raise ValueError(f"unsupported TF network option {unknown[0]!r}")
    return kwarg, check


def collect_params(net: TFNetwork, prefix: str = "", out: dict | None = None, seen: set | None = None) -> dict[str, np.ndarray]:
    """Every variable of a network and its components under 'component/name', as float32 arrays.

    Variables must be arrays (a list shared many times over could expand enormously), and a network
    listed twice is refused: either would let a small file stand for far more data."""
    out = {} if out is None else out
    seen = set() if seen is None else seen
    if id(net) in seen:
        raise ValueError("a TF network component appears more than once")
    seen.add(id(net))
    converted: dict[int, np.ndarray] = {}
    for entry in net.state.get("variables", []):
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[1], (np.ndarray, np.generic))):
            raise ValueError(f"TF variable entry in {prefix or 'the network'} is not a (name, array) pair")
        name, value = entry
        if id(value) not in converted:
            converted[id(value)] = np.asarray(value, dtype=np.float32)
        out[prefix + str(name)] = converted[id(value)]
    components = net.state.get("components", {})
    for name, comp in (components.items() if isinstance(components, dict) else ()):
        if not isinstance(comp, TFNetwork):
            raise ValueError(f"TF component {prefix}{name} is not a network")
        collect_params(comp, f"{prefix}{name}/", out, seen)
    return out


def generator_kwargs(static_kwargs: dict) -> dict:
    kwarg, check = _kwarg_reader(static_kwargs)
    kwargs = dict(
        z_dim=kwarg("latent_size", 512), c_dim=kwarg("label_size", 0), w_dim=kwarg("dlatent_size", 512),
        img_resolution=kwarg("resolution", 1024), img_channels=kwarg("num_channels", 3),
        channel_base=kwarg("fmap_base", 16384) * 2,  # TF halves the base: nf(s) = fmap_base / 2**s
        channel_max=kwarg("fmap_max", 512), num_fp16_res=kwarg("num_fp16_res", 0),
        conv_clamp=kwarg("conv_clamp", None), architecture=kwarg("architecture", "skip"),
        resample_filter=kwarg("resample_kernel", [1, 3, 3, 1]), use_noise=kwarg("use_noise", True),
        activation=kwarg("nonlinearity", "lrelu"),
        mapping_kwargs=dict(
            num_layers=kwarg("mapping_layers", 8), embed_features=kwarg("label_fmaps", None),
            layer_features=kwarg("mapping_fmaps", None), activation=kwarg("mapping_nonlinearity", "lrelu"),
            lr_multiplier=kwarg("mapping_lrmul", 0.01), w_avg_beta=kwarg("w_avg_beta", 0.995, none=1)),
    )
    check("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure", "conditioning", "fused_modconv")
    return kwargs


def discriminator_kwargs(static_kwargs: dict) -> dict:
    kwarg, check = _kwarg_reader(static_kwargs)
    kwargs = dict(
        c_dim=kwarg("label_size", 0), img_resolution=kwarg("resolution", 1024),
        img_channels=kwarg("num_channels", 3), architecture=kwarg("architecture", "resnet"),
        channel_base=kwarg("fmap_base", 16384) * 2, channel_max=kwarg("fmap_max", 512),
        num_fp16_res=kwarg("num_fp16_res", 0), conv_clamp=kwarg("conv_clamp", None),
        cmap_dim=kwarg("mapping_fmaps", None),
        block_kwargs=dict(activation=kwarg("nonlinearity", "lrelu"),
                          resample_filter=kwarg("resample_kernel", [1, 3, 3, 1]),
                          freeze_layers=kwarg("freeze_layers", 0)),
        mapping_kwargs=dict(num_layers=kwarg("mapping_layers", 0), embed_features=kwarg("mapping_fmaps", None),
                            layer_features=kwarg("mapping_fmaps", None), activation=kwarg("nonlinearity", "lrelu"),
                            lr_multiplier=kwarg("mapping_lrmul", 0.1)),
        epilogue_kwargs=dict(mbstd_group_size=kwarg("mbstd_group_size", None),
                             mbstd_num_channels=kwarg("mbstd_num_features", 1),
                             activation=kwarg("nonlinearity", "lrelu")),
    )
    check("structure", "conditioning")
    return kwargs


def _conv(w: np.ndarray) -> np.ndarray:      # [kh, kw, in, out] -> [out, in, kh, kw]
    return w.transpose(3, 2, 0, 1)


def _flip(w: np.ndarray) -> np.ndarray:
    return w[::-1, ::-1]


def _layer_field(tf: dict, scope: str, field: str, noise: str | None, flip: bool = False) -> np.ndarray:
    """One field of a modulated layer (Conv*, ToRGB) of the synthesis network."""
    if field == "weight":
        w = tf[f"{scope}/weight"]
        return _conv(_flip(w) if flip else w)
    if field == "affine.weight":
        return tf[f"{scope}/mod_weight"].T
    if field == "affine.bias":
        return tf[f"{scope}/mod_bias"] + 1
    if field == "noise_const":
        return tf[noise][0, 0]
    return tf[f"{scope}/{field}"]                # bias, noise_strength


def generator_tensor(name: str, tf: dict) -> np.ndarray | None:
    """NVIDIA-named generator tensor from TF variables; None for buffers we construct (filters)."""
    if name.endswith("resample_filter"):
        return None
    if name == "mapping.w_avg":
        return tf["dlatent_avg"]
    if m := re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name):
        scope = "mapping/LabelEmbed" if m[1] == "embed" else f"mapping/Dense{m[2]}"
        return tf[f"{scope}/weight"].T if m[3] == "weight" else tf[f"{scope}/bias"]
    if name == "synthesis.b4.const":
        return tf["synthesis/4x4/Const/const"][0]
    if m := re.fullmatch(r"synthesis\.b4\.(conv1|torgb)\.(.+)", name):
        scope = "synthesis/4x4/Conv" if m[1] == "conv1" else "synthesis/4x4/ToRGB"
        return _layer_field(tf, scope, m[2], "synthesis/noise0")
    if m := re.fullmatch(r"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.(.+)", name):
        r, layer, field = int(m[1]), m[2], m[3]
        log2 = int(np.log2(r))
        scope = {"conv0": "Conv0_up", "conv1": "Conv1", "torgb": "ToRGB"}[layer]
        noise = {"conv0": f"synthesis/noise{2 * log2 - 5}", "conv1": f"synthesis/noise{2 * log2 - 4}"}.get(layer)
        return _layer_field(tf, f"synthesis/{r}x{r}/{scope}", field, noise, flip=layer == "conv0")
    if m := re.fullmatch(r"synthesis\.b(\d+)\.skip\.weight", name):
        return _conv(_flip(tf[f"synthesis/{m[1]}x{m[1]}/Skip/weight"]))
    raise KeyError(name)


def discriminator_tensor(name: str, tf: dict) -> np.ndarray | None:
    if name.endswith("resample_filter"):
        return None
    if m := re.fullmatch(r"b(\d+)\.(fromrgb|conv0|conv1|skip)\.(weight|bias)", name):
        scope = {"fromrgb": "FromRGB", "conv0": "Conv0", "conv1": "Conv1_down", "skip": "Skip"}[m[2]]
        v = tf[f"{m[1]}x{m[1]}/{scope}/{m[3]}"]
        return _conv(v) if m[3] == "weight" else v
    if m := re.fullmatch(r"mapping\.(embed|fc(\d+))\.(weight|bias)", name):
        scope = "LabelEmbed" if m[1] == "embed" else f"Mapping{m[2]}"
        return tf[f"{scope}/weight"].T if m[3] == "weight" else tf[f"{scope}/bias"]
    if m := re.fullmatch(r"b4\.(conv|fc|out)\.(weight|bias)", name):
        scope = {"conv": "4x4/Conv", "fc": "4x4/Dense0", "out": "Output"}[m[1]]
        v = tf[f"{scope}/{m[2]}"]
        if m[2] == "weight":
            return _conv(v) if m[1] == "conv" else v.T
        return v
    raise KeyError(name)


def _rename_orig_torgb(tf: dict, kwargs: dict) -> None:
    # 'orig' networks name their single ToRGB by level of detail; make it look like the others.
    for name, value in list(tf.items()):
        if m := re.fullmatch(r"synthesis/ToRGB_lod(\d+)/(.*)", name):
            r = kwargs["img_resolution"] // 2 ** int(m[1])
            tf[f"synthesis/{r}x{r}/ToRGB/{m[2]}"] = value
            kwargs["architecture"] = "orig"


def fill_state_dict(module: torch.nn.Module, tf: dict, tensor_fn) -> dict[str, torch.Tensor]:
    """Every tensor of `module`, taken from TF variables where the rules name one."""
    out = {}
    for name, ours in module.state_dict().items():
        try:
            value = tensor_fn(name, tf)
        except KeyError as e:
            raise ValueError(f"TF network lacks a variable for {name} ({e.args[0]})") from None
        if value is None:
            out[name] = ours
            continue
        t = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))  # ascontiguousarray makes 0-d 1-d
        if t.shape != ours.shape:
            raise ValueError(f"TF variable for {name} has shape {tuple(t.shape)}, expected {tuple(ours.shape)}")
        out[name] = t
    return out


def convert(nets: tuple) -> dict[str, NetSpec]:
    """(G, D, Gs) -> {'G', 'D', 'G_ema'} network specs."""
    if not (isinstance(nets, tuple) and len(nets) == 3 and all(isinstance(n, TFNetwork) for n in nets)):
        raise ValueError("not a (G, D, Gs) TF network tuple")
    out = {}
    for key, net in zip(("G", "D", "G_ema"), nets):
        version, static_kwargs = net.state.get("version", 0), net.state.get("static_kwargs", {})
        if not isinstance(version, int) or version < 4:
            raise ValueError(f"TF network format version {version!r} is not supported (need 4 or newer)")
        if not isinstance(static_kwargs, dict):
            raise ValueError(f"TF network {key} has no settings dict")
        tf = collect_params(net)
        if key == "D":
            kwargs = discriminator_kwargs(static_kwargs)
            out[key] = NetSpec("stylegan2_discriminator", kwargs, lambda m, tf=tf: fill_state_dict(m, tf, discriminator_tensor))
        else:
            kwargs = generator_kwargs(static_kwargs)
            _rename_orig_torgb(tf, kwargs)
            out[key] = NetSpec("stylegan2", canonical_kwargs("stylegan2", kwargs),
                               lambda m, tf=tf: fill_state_dict(m, tf, generator_tensor))
    return out
