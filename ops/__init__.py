"""Differentiable ops of the StyleGAN networks.

Each op has one public function taking `impl='auto'|'ref'|'fast'|'cuda'`: 'ref' is the literal
arithmetic, 'fast' the CPU reformulation, 'cuda' the fused kernels (falls back when unavailable).

The fused kernels compile on first use, and so do the CPU kernels (`build_cpu`, `cpu_status`,
`cpu_cached`); `build_status()` says what will run and why, `build(name)`
compiles ahead of time, `toolchain()` describes the compiler setup a build would use."""
from ._activations import ACTIVATIONS, Activation
from ._build import (OPS as CUDA_OPS, BuildResult, OpsBuildError, OpsBuildWarning, OpStatus, Toolchain, build,
                     build_status, toolchain)
from ._cpu import CPU_OPS, build as build_cpu, cached as cpu_cached, status as cpu_status
from ._impl import IMPLS, use_impl
from .bias_act import bias_act
from .conv2d_resample import conv2d_resample
from .filtered_lrelu import filtered_lrelu
from .modulated_conv2d import modulated_conv2d
from .upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = ["ACTIVATIONS", "Activation", "bias_act", "conv2d_resample", "filtered_lrelu", "modulated_conv2d",
           "setup_filter", "upfirdn2d", "filter2d", "upsample2d", "downsample2d", "IMPLS", "use_impl",
           "CUDA_OPS", "BuildResult", "OpStatus", "Toolchain", "OpsBuildError", "OpsBuildWarning", "build",
           "build_status", "toolchain", "CPU_OPS", "build_cpu", "cpu_cached", "cpu_status"]
