"""Feature-network files -> the detector modules of `networks.py`, without running any file's code.

Sources (a path, an http(s) URL or a registry name; `DEFAULT_DETECTORS` names NVIDIA's):

- NVIDIA's TorchScript `inception-2015-12-05.pt` and `vgg16.pt`: TorchScript is code, so the archive's
  tensors are read as data (`loaders/torchscript.py`) and mapped into `InceptionV3` / `VGG16` by name;
- pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (a plain state dict, read with weights_only): the
  same TF weights under torchvision's names, mapped into `InceptionV3` (so its features are NVIDIA's);
- the reference fixtures' stand-ins (`inception_standin.pt`, `vgg16_standin.pt`), either way;
- with `trust_code=True` only: any TorchScript file with NVIDIA's call interface, run as itself. That
  executes the code inside the file; it is how a file whose tensors map onto none of ours still works.

A file whose sha256 is known (`KNOWN_FILES`: the registry's digests and the fixtures' stand-ins) is mapped
by the layout that digest names, and nothing else; any other file by the first layout its tensor names
(or, failing those, order and shapes) fit. A file of the wrong kind, or one whose tensors fit no known
layout, is a one-line ValueError."""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Callable, Mapping, Optional, Union

import torch

from .._errors import first_line
from . import networks

KINDS = ("inception", "vgg16")
DEFAULT_DETECTORS = {"inception": "inception-2015-12-05", "vgg16": "vgg16"}
WHAT = {"inception": "Inception (FID/KID/IS)", "vgg16": "VGG16 (precision/recall, PPL)"}

Source = Union[str, os.PathLike, torch.nn.Module]


# ---------------------------------------------------------------------------------------------------
# Name maps: our state-dict name -> the file's name, per known layout

def _identity(names: list[str]) -> dict[str, str]:
    return {n: n for n in names}


_FID_CONV = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}
_FID_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
             "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_FID_MIXED = {"mixed": "Mixed_5b", "mixed_1": "Mixed_5c", "mixed_2": "Mixed_5d", "mixed_3": "Mixed_6a",
              "mixed_4": "Mixed_6b", "mixed_5": "Mixed_6c", "mixed_6": "Mixed_6d", "mixed_7": "Mixed_6e",
              "mixed_8": "Mixed_7a", "mixed_9": "Mixed_7b", "mixed_10": "Mixed_7c"}
# TF scope names inside a block (NVIDIA's) -> torchvision's branch names (pytorch-fid's), per block type.
_FID_BRANCH = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1",
          **{f"tower.{c}": f"branch7x7_{i + 1}" for i, c in enumerate(["conv", "conv_1", "conv_2"])},
          **{f"tower_1.{c}": f"branch7x7dbl_{i + 1}" for i, c in enumerate(["conv", "conv_1", "conv_2", "conv_3",
                                                                          "conv_4"])},
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
          **{f"tower_1.{c}": f"branch7x7x3_{i + 1}" for i, c in enumerate(["conv", "conv_1", "conv_2", "conv_3"])}},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}
_BLOCK_TYPE = {"mixed": "A", "mixed_1": "A", "mixed_2": "A", "mixed_3": "B", "mixed_4": "C", "mixed_5": "C",
               "mixed_6": "C", "mixed_7": "C", "mixed_8": "D", "mixed_9": "E", "mixed_10": "E"}


def _pytorch_fid_names(names: list[str]) -> dict[str, str]:
    out = {"output.weight": "fc.weight", "output.bias": "fc.bias"}
    for n in names:
        if not n.startswith("layers."):
            continue
        path, tensor = n[len("layers."):].rsplit(".", 1)
        head, _, rest = path.partition(".")
        if head in _FID_STEM:
            out[n] = f"{_FID_STEM[head]}.{_FID_CONV[tensor]}"
        else:
            out[n] = f"{_FID_MIXED[head]}.{_FID_BRANCH[_BLOCK_TYPE[head]][rest]}.{_FID_CONV[tensor]}"
    return out


def _nvidia_vgg_names(names: list[str]) -> dict[str, str]:
    out = {}
    for n in names:
        parts = n.split(".")
        if parts[:2] == ["lpips_net", "convs"]:
            out[n] = f"layers.conv{int(parts[2]) + 1}.{parts[3]}"
        elif parts[0] == "lpips_net" and parts[1].startswith("lin"):
            out[n] = f"lpips{parts[1][3:]}"
        elif parts[0] in ("fc1", "fc2", "fc3"):
            out[n] = f"layers.{n}"
    return out          # lpips_net.shift/scale are constants of the architecture, not in the file


def _standin_vgg_names(names: list[str]) -> dict[str, str]:
    out = {}
    for n in names:
        parts = n.split(".")
        if parts[:2] == ["lpips_net", "convs"]:
            out[n] = f"{parts[3][0]}{parts[2]}"                     # convs.i.weight -> wi, convs.i.bias -> bi
        elif parts[0] == "lpips_net" and parts[1].startswith("lin"):
            out[n] = parts[1]
        elif parts[0] in ("fc_w", "fc_b"):
            out[n] = n
    return out


# (kind, layout name, module, name map, names the file may carry that we do not use)
LAYOUTS: list[tuple[str, str, Callable[[], torch.nn.Module], Callable[[list[str]], dict], tuple[str, ...]]] = [
    ("inception", "NVIDIA's inception-2015-12-05.pt", networks.InceptionV3, _identity, ()),
    ("inception", "pytorch-fid's pt_inception-2015-12-05", networks.InceptionV3, _pytorch_fid_names,
     ("AuxLogits.", "num_batches_tracked", "bn.weight")),
    ("inception", "the fixture's inception stand-in", networks.InceptionStandin, _identity, ()),
    ("vgg16", "NVIDIA's vgg16.pt", networks.VGG16, _nvidia_vgg_names, ()),
    ("vgg16", "the fixture's vgg16 stand-in", networks.VGG16Standin, _standin_vgg_names, ()),
]


# Files known by their sha256 -> the layout they hold. The registry's entries with a confirmed digest join
# through REGISTRY_LAYOUTS; the reference fixtures' stand-ins are named here (their bytes never change).
REGISTRY_LAYOUTS = {"pt-inception-2015-12-05": "pytorch-fid's pt_inception-2015-12-05",
                    "inception-2015-12-05": "NVIDIA's inception-2015-12-05.pt", "vgg16": "NVIDIA's vgg16.pt"}
STANDIN_DIGESTS = {
    "9f7098cdef96af39397e311a8525d0ab7d5dfee7aa1e507bd301fb8c35abb10f": "the fixture's inception stand-in",
    "ce479d0bfda8593fafdef526ed6ba5eb80094fb8f3ce269b76d2ada0a8d0343a": "the fixture's vgg16 stand-in",
}


def known_files() -> dict[str, str]:
    """{sha256: layout name} of every feature-network file recognised by its digest."""
    from .. import hub
    known = dict(STANDIN_DIGESTS)
    for name, layout in REGISTRY_LAYOUTS.items():
        entry = hub.lookup(name)
        if entry.sha256 is not None and len(entry.sha256) == 64:
            known[entry.sha256.lower()] = layout
    return known


# ---------------------------------------------------------------------------------------------------
# Loading

class ScriptDetector(torch.nn.Module):
    """A TorchScript detector run as itself, called with NVIDIA's keyword arguments. Its code runs:
    built only when the caller passed trust_code=True."""

    def __init__(self, net: torch.jit.ScriptModule, kind: str):
        super().__init__()
        self.net, self.kind = net, kind

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images, return_features=True).to(torch.float32)

    def probabilities(self, images: torch.Tensor, output_bias: bool = False) -> torch.Tensor:
        return self.net(images, no_output_bias=not output_bias)

    def lpips(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images, resize_images=False, return_lpips=True)


def load_detector(source: Source, kind: str, *, device: Union[str, torch.device] = "cpu", trust_code: bool = False,
                  cache_dir: Optional[Union[str, os.PathLike]] = None, progress=True) -> torch.nn.Module:
    """The `kind` detector ('inception' or 'vgg16') from a module, path, URL or registry name, on `device`,
    frozen, with a `digest` attribute (sha256 of the file) that statistics caches key on and a `layout`
    attribute naming what it was read as ('recognised by sha256' when the digest named it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown detector kind {kind!r}: expected one of {', '.join(KINDS)}")
    if isinstance(source, torch.nn.Module):
        if getattr(source, "kind", kind) != kind:
            raise ValueError(f"the {source.kind} detector given where the {WHAT[kind]} detector belongs")
        if not hasattr(source, "digest"):
            source.digest = _state_digest(source)
        return source.eval().requires_grad_(False).to(device)
    path = _resolve(os.fspath(source), cache_dir, progress)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    scripted = _is_torchscript(path)
    known = known_files().get(digest)
    known_kind = next((k for k, name, *_ in LAYOUTS if name == known), None)
    if known is not None and known_kind != kind:
        raise ValueError(f"{path}: {known} (recognised by its sha256), not the {WHAT[kind]} detector")
    if scripted and trust_code:
        try:
            net = ScriptDetector(torch.jit.load(str(path), map_location=device).eval(), kind)
        except (RuntimeError, ValueError, OSError) as e:
            raise ValueError(f"{path}: not a TorchScript detector ({first_line(e)})") from None
        net.layout = "TorchScript run as itself (trust_code)"
    else:
        tensors = _read_tensors(path, scripted)
        net = from_tensors(tensors, kind, what=str(path), scripted=scripted, layout=known)
        net.layout += " (recognised by sha256)" if known else ""
    net.digest = digest
    return net.eval().requires_grad_(False).to(device)


def from_tensors(tensors: Mapping[str, torch.Tensor], kind: str, what: str = "tensors", scripted: bool = False,
                 layout: Optional[str] = None) -> torch.nn.Module:
    """The first layout of `kind` whose names (then, failing that, order and shapes) the tensors fit; only
    the layout called `layout` when given (a file recognised by its digest). Its name is the `layout`
    attribute of the module returned."""
    problems = []
    for layout_kind, name, build, name_map, optional in LAYOUTS:
        if layout_kind != kind or layout not in (None, name):
            continue
        pairs, problem = _match(build, tensors, name_map, optional)
        if problem is None:
            net = _build_with(build, pairs, tensors, name_map)
            net.layout = name
            return net
        problems.append(f"{name}: {problem}")
    if layout is not None:
        raise ValueError(f"{what}: its sha256 is that of {layout}, but its tensors do not fit it ({problems[0]})")
    other = [n for k, n, b, m, o in LAYOUTS if k != kind and _match(b, tensors, m, o)[1] is None]
    if other:
        raise ValueError(f"{what}: holds {other[0]}, not the {WHAT[kind]} detector")
    # Name mismatches say little when some layout's names all matched: report that layout's problem.
    content = [p for p in problems if ": no tensor " not in p and ": unexpected tensor " not in p]
    hint = " (pass trust_code=True / --trust-code to run the file's own code instead)" if scripted else ""
    raise ValueError(f"{what}: its {len(tensors)} tensors fit no {WHAT[kind]} detector layout "
                     f"({(content or problems)[0]}){hint}")


def _match(build, tensors: Mapping[str, torch.Tensor], name_map, optional) -> tuple[list, Optional[str]]:
    """[(our name, file tensor)] by the layout's names, or by order when every shape agrees one for one;
    else the reason the tensors do not fit. Checked on a meta-device module: nothing allocated or drawn."""
    with torch.device("meta"):
        state = build().state_dict()
    ours_to_file = name_map(list(state))
    wanted = {ours: theirs for ours, theirs in ours_to_file.items() if ours in state}
    kept = {k: t for k, t in tensors.items() if not any(o in k for o in optional)}
    missing = [theirs for theirs in wanted.values() if theirs not in kept]
    extra = [k for k in kept if k not in wanted.values()]
    if not missing and not extra:
        pairs = [(ours, kept[theirs]) for ours, theirs in wanted.items()]
    elif len(kept) == len(wanted) and all(_fits(t, state[o]) for t, o in zip(kept.values(), wanted)):
        pairs = list(zip(wanted, kept.values()))       # the same tensors under other names, in our order
    else:
        return [], f"no tensor {missing[0]!r}" if missing else f"unexpected tensor {extra[0]!r}"
    for ours, t in pairs:
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            return [], f"{ours_to_file[ours]} is not a floating-point tensor"
        if not _fits(t, state[ours]):
            return [], f"{ours_to_file[ours]} has shape {list(t.shape)}, expected {list(state[ours].shape)}"
        if not bool(torch.isfinite(t).all()):
            return [], f"{ours_to_file[ours]} holds NaN or infinity"
    return pairs, None


def _build_with(build, pairs: list, tensors: Mapping[str, torch.Tensor], name_map) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):         # layer initialisers draw; the caller's stream stays put
        net = build()
    state = net.state_dict()
    with torch.no_grad():
        for ours, t in pairs:
            state[ours].copy_(t.reshape(state[ours].shape).to(state[ours].dtype))
        if name_map is _pytorch_fid_names:
            _fold_batchnorm_scale(net, tensors, name_map(list(state)))
    return net


def _fits(t, mine: torch.Tensor) -> bool:
    # lin weights come as [C], [C, 1, 1] or [1, C, 1, 1]; everything else must match exactly.
    if not isinstance(t, torch.Tensor):
        return False
    if tuple(t.shape) == tuple(mine.shape):
        return True
    return mine.ndim == 1 and t.numel() == mine.numel() and t.squeeze().ndim <= 1


def _fold_batchnorm_scale(net: torch.nn.Module, tensors: Mapping[str, torch.Tensor], ours_to_file: dict) -> None:
    """pytorch-fid stores a batch-norm scale (all ones for these TF weights); a scale g other than one is
    folded exactly: conv weight * g and mean * g give (conv(x) - mean) * g / sqrt(var + eps)."""
    for name, module in net.named_modules():
        if not isinstance(module, networks.TFConv):
            continue
        gamma = tensors.get(ours_to_file[f"{name}.weight"].replace(".conv.weight", ".bn.weight"))
        if gamma is None or bool((gamma == 1).all()):
            continue
        gamma = gamma.to(module.weight.dtype).reshape(-1)
        module.weight.mul_(gamma.reshape(-1, 1, 1, 1))
        module.mean.mul_(gamma)


def _resolve(text: str, cache_dir, progress) -> Path:
    from .. import hub
    if hub.is_known(text) and not Path(text).is_file():
        entry = hub.lookup(text)
        if entry.kind not in ("detector", "perceptual"):
            raise ValueError(f"{text}: a {entry.kind} model, not a feature network for metrics")
    path = hub.resolve(text, cache_dir, progress)
    if not Path(path).is_file():
        raise ValueError(f"{text}: no such file")
    return Path(path)


def _is_torchscript(path: Path) -> bool:
    from ..loaders.torchscript import is_torchscript
    return is_torchscript(path)


def _read_tensors(path: Path, scripted: bool) -> Mapping[str, torch.Tensor]:
    if scripted:
        from ..loaders.torchscript import read_torchscript
        return read_torchscript(path).tensors
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:      # a file format boundary: any failure to read is the file's fault
        kind = "a zip that is neither TorchScript nor a state dict" if zipfile.is_zipfile(path) else "not a state dict"
        raise ValueError(f"{path}: not a feature network ({kind}: {first_line(e)})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a feature network (holds a {type(state).__name__}, not a dict of tensors)")
    return state


def _state_digest(net: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
