"""Constructor kwargs as files record them -> the one form our constructors take.

NVIDIA's two StyleGAN2 generators take the same settings in two shapes: stylegan2-ada-pytorch nests
them (`synthesis_kwargs={...}`) and its classes default to no clamping and no fp16 layers;
stylegan3's copy passes them flat and defaults to `conv_clamp=256, num_fp16_res=4`, as ours do. Our
StyleGAN2 generator takes only the nested form with our defaults, so a file's kwargs are rewritten
here, once, whatever the format. StyleGAN3 generators already take NVIDIA's form."""
from __future__ import annotations

import copy

GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")
# stylegan2-ada-pytorch's defaults where they differ from ours (generator synthesis and discriminator).
ADA_DEFAULTS = {"conv_clamp": None, "num_fp16_res": 0}


def is_ada_form(arch: str, kwargs: dict) -> bool:
    """Whether a generator's kwargs have stylegan2-ada-pytorch's nested shape."""
    return arch == "stylegan2" and isinstance(kwargs, dict) and "synthesis_kwargs" in kwargs


def canonical_kwargs(arch: str, kwargs: dict, ada: bool | None = None) -> dict:
    """`kwargs` recorded for a network of `arch` -> what `create_model(arch, ...)` takes.

    `ada`: the settings come from stylegan2-ada-pytorch, so missing ones take its defaults. None
    decides by shape (nested generator kwargs are ada's; a discriminator's shape does not tell)."""
    if not isinstance(kwargs, dict):
        raise ValueError(f"constructor arguments are a {type(kwargs).__name__}, not a dict")
    kwargs = copy.deepcopy(kwargs)
    if ada is None:
        ada = is_ada_form(arch, kwargs)
    if arch == "stylegan2":
        nested = kwargs.pop("synthesis_kwargs", None) or {}
        if not isinstance(nested, dict):
            raise ValueError("synthesis_kwargs is not a dict")
        flat = {k: kwargs.pop(k) for k in list(kwargs) if k not in GENERATOR_ARGS}
        synthesis = {**(ADA_DEFAULTS if ada else {}), **nested, **flat}
        return {**kwargs, "synthesis_kwargs": synthesis}
    if arch == "stylegan2_discriminator" and ada:
        return {**ADA_DEFAULTS, **kwargs}
    return kwargs
