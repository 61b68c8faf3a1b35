"""Styles as values: the table of style layers, ws -> styles (the S space), synthesis from styles.

A style is the output of one layer's affine, `s = A(w)`, before anything else the layer does with it
(ToRGB's 1/sqrt(fan_in) gain, StyleGAN3's unit-RMS normalisation). That is the StyleSpace paper's S space
("StyleSpace Analysis", Wu et al. 2021), the space SeFa factorises (its directions come from the affine
weights) and the one W+ projection reaches through. Synthesis from styles runs exactly the operations of
synthesis from ws, minus the affines, so `synthesize_styles(G, ws_to_styles(G, ws))` is bit-identical to
`G.synthesis(ws)`.

Layer names are paths below the synthesis network (`G.synthesis.get_submodule(name)` is the layer):
StyleGAN2 'b4.conv1', 'b4.torgb', 'b8.conv0', ...; StyleGAN3 'input', 'L0_36_512', ..., where 'input' is
the Fourier input's affine: 4 numbers (rotation r_c, r_s; translation t_x, t_y), not channel scales.
"""
from __future__ import annotations

import dataclasses

import torch

KINDS = ("conv", "torgb", "input")


@dataclasses.dataclass(frozen=True)
class StyleLayer:
    """One style layer, in the order synthesis uses them.

    ws_index: the row of ws [N, num_ws, w_dim] its affine reads (StyleGAN2's torgb of block k and conv0
    of block k+1 read the same row). channels: the style vector's length (the affine's out_features).
    affine: the layer's affine, a FullyConnectedLayer (w_dim -> channels); weight * weight_gain and
    bias * bias_gain are A's matrix and offset."""
    name: str
    ws_index: int
    channels: int
    kind: str
    affine: torch.nn.Module = dataclasses.field(compare=False, repr=False)

    def __post_init__(self):
        assert self.kind in KINDS, self.kind
        assert self.channels == self.affine.out_features


def _synthesis(net: torch.nn.Module) -> torch.nn.Module:
    """G or G.synthesis -> the synthesis network."""
    synthesis = getattr(net, "synthesis", net)
    if not callable(getattr(synthesis, "style_layers", None)):
        raise ValueError(f"{type(net).__name__} has no style layers (expected a generator or its synthesis network)")
    return synthesis


def style_layers(net: torch.nn.Module) -> list[StyleLayer]:
    """The style layers of a generator (or of its synthesis network), in the order synthesis uses them."""
    return _synthesis(net).style_layers()


def num_style_channels(net: torch.nn.Module) -> int:
    """The dimension of S: all layers' style channels together."""
    return sum(layer.channels for layer in style_layers(net))


def ws_to_styles(net: torch.nn.Module, ws: torch.Tensor) -> dict[str, torch.Tensor]:
    """ws [N, num_ws, w_dim] -> {layer name: styles [N, channels]}, in the table's order.

    Each layer's affine reads the same view of ws that synthesis reads, so the values are the ones
    synthesis from ws computes internally. Differentiable in ws and in the affines' parameters."""
    synthesis = _synthesis(net)
    if ws.ndim != 3 or ws.shape[1:] != (synthesis.num_ws, synthesis.w_dim):
        raise ValueError(f"ws must have shape [N, {synthesis.num_ws}, {synthesis.w_dim}], got {list(ws.shape)}")
    ws = ws.to(torch.float32)
    return {layer.name: layer.affine(ws[:, layer.ws_index]) for layer in synthesis.style_layers()}


def synthesize_styles(net: torch.nn.Module, styles: dict[str, torch.Tensor], **synthesis_kwargs) -> torch.Tensor:
    """Images from styles: `G.synthesis(styles=styles, **synthesis_kwargs)` (noise_mode, fused_modconv, ...)."""
    return _synthesis(net)(styles=styles, **synthesis_kwargs)


def check_styles(layers: list[StyleLayer], styles: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Validate a styles dict against the table; returns it as float32 tensors (no copy if already so)."""
    if not isinstance(styles, dict):
        raise ValueError(f"styles must be a dict of layer name -> tensor, got {type(styles).__name__}")
    names = [layer.name for layer in layers]
    missing = [n for n in names if n not in styles]
    unknown = [n for n in styles if n not in names]
    if missing or unknown:
        raise ValueError(f"styles do not match the network's style layers (missing {missing}, unknown {unknown})")
    batch = None
    out = {}
    for layer in layers:
        s = styles[layer.name]
        if not isinstance(s, torch.Tensor) or s.ndim != 2 or s.shape[1] != layer.channels:
            shape = list(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise ValueError(f"styles['{layer.name}'] must have shape [N, {layer.channels}], got {shape}")
        if batch is None:
            batch = s.shape[0]
        if s.shape[0] != batch:
            raise ValueError(f"styles['{layer.name}'] has batch {s.shape[0]}, others {batch}")
        out[layer.name] = s.to(torch.float32)
    return out
