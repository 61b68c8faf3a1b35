"""Fine-tuning: start a run from a trained network (NVIDIA or TF pickle, rosinality checkpoint, our own
file or snapshot, a zoo name) by copying its tensors into the networks the run's setup builds (which
take the file's shapes, training/config.py `adopt_pretrained`).

As NVIDIA's `copy_params_and_buffers(require_all=False)`: a tensor the run's network has and the file
lacks keeps its fresh initialisation (a label embedding when fine-tuning a conditional model from an
unconditional one, D when the file holds generators only). Unlike it, a file tensor the network has
no place for, or one of another shape, is refused in one line naming it: transfer to another
resolution, capacity or depth is not supported, and silently training half-loaded networks is worse."""
from __future__ import annotations

import torch



def copy_pretrained(nets, source: str, G: torch.nn.Module, D: torch.nn.Module, G_ema: torch.nn.Module) -> None:
    """nets: what `stylegan.load(source)` returned."""
    pairs = [("G", G, nets.G if nets.G is not None else nets.G_ema),
             ("G_ema", G_ema, nets.G_ema if nets.G_ema is not None else nets.G),
             ("D", D, nets.D)]
    for key, dst, src in pairs:
        if src is None:
            continue
        if src.arch != dst.arch:
            raise ValueError(f"{source}: its {key} is a {src.arch} network, and this --cfg trains {dst.arch}: "
                             "pick the --cfg of the file's architecture")
        _copy(source, key, src, dst)


def _copy(source: str, key: str, src: torch.nn.Module, dst: torch.nn.Module) -> None:
    have = src.state_dict()
    want = dst.state_dict()
    extra = [k for k in have if k not in want]
    if extra:
        raise ValueError(f"{source}: {key} has {extra[0]}{f' (and {len(extra) - 1} more tensors)' if len(extra) > 1 else ''}, "
                         f"which this run's {key} lacks: match --cbase/--cmax/--map to the file's network")
    for name, t in have.items():
        if t.shape != want[name].shape:
            raise ValueError(f"{source}: {key}.{name} is {list(t.shape)} in the file and {list(want[name].shape)} "
                             "in this run's network: transfer to another resolution or capacity is not supported "
                             "(match the data set's resolution and --cbase/--cmax to the file's)")
    with torch.no_grad():
        for name, t in dst.state_dict(keep_vars=True).items():
            if name in have:
                t.copy_(have[name])
