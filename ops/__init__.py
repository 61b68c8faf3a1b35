"""Differentiable ops of the StyleGAN networks.

Each op has one public function taking `impl='auto'|'ref'|'fast'|'cuda'`: 'ref' is the literal
arithmetic, 'fast' the CPU reformulation, 'cuda' the fused kernels (falls back when unavailable)."""
from ._util import use_impl
from .bias_act import ACTIVATIONS, bias_act
from .conv2d_resample import conv2d_resample
from .filtered_lrelu import filtered_lrelu
from .modulated_conv2d import modulated_conv2d
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = ["ACTIVATIONS", "bias_act", "conv2d_resample", "filtered_lrelu", "modulated_conv2d", "setup_filter",
           "upfirdn2d", "filter2d", "upsample2d", "downsample2d", "use_impl"]
