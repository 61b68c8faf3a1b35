"""`stylegan ops build|status`: compile the fused CUDA ops ahead of time, or see what will run."""
from __future__ import annotations

import os
import sys

import click
import torch

from ops import _build
from ops._util import IMPLS


def _echo_toolchain(tc: _build.Toolchain) -> None:
    click.echo(f"torch:        {torch.__version__} (CUDA {torch.version.cuda or 'none: CPU build'})")
    click.echo(f"CUDA root:    {tc.root or '-'}")
    click.echo(f"nvcc:         {tc.nvcc_version or '-'}")
    click.echo(f"archs:        {';'.join(tc.archs)}")
    click.echo(f"cache folder: {_build.cache_dir()}")


@click.group("ops", context_settings={"help_option_names": ["-h", "--help"]})
def ops_group():
    """Fused CUDA kernels for bias_act, upfirdn2d and filtered_lrelu.

    They are compiled on first use with a CUDA tensor and cached (STYLEGAN_OPS_CACHE, default
    ~/.cache/stylegan/ops). STYLEGAN_OPS_IMPL=ref|fast|cuda forces an implementation.

    \b
    Examples:
      stylegan ops status
      stylegan ops build
      CUDA_HOME=/usr/local/cuda-13.0 TORCH_CUDA_ARCH_LIST="8.0;9.0" stylegan ops build
    """


@ops_group.command("build")
@click.argument("names", nargs=-1, type=click.Choice(_build.OPS))
def build(names):
    """Compile the ops now (all, or NAMES) and report built / cached / failed per op.

    Exits non-zero if any op failed to build.

    \b
    Examples:
      stylegan ops build
      stylegan ops build upfirdn2d
    """
    tc = _build.toolchain()
    _echo_toolchain(tc)
    failed = 0
    for name in names or _build.OPS:
        r = _build.build_op(name, tc=tc)
        detail = r.reason if r.status == "failed" else f"{r.seconds:.1f} s, {r.path}"
        click.echo(f"{name:15s} {r.status:7s} {detail}")
        failed += r.status == "failed"
    if failed:
        click.echo(f"Error: {failed} op(s) failed to build; the PyTorch path will be used for them.", err=True)
        sys.exit(1)


def _cuda_choice(name: str, tc: _build.Toolchain) -> tuple[str, str]:
    """(impl, why) for a CUDA tensor, from what is installed and cached; builds nothing."""
    missing = _build.missing_sources(name)
    if missing:
        return "fast", f"CUDA kernels unavailable: {missing}"
    if tc.problem:
        return "fast", f"CUDA kernels unavailable: {tc.problem}"
    cached = _build.cached_build(name, tc)
    if cached:
        return "cuda", f"built, cached in {cached}"
    return "cuda", "will be compiled on first use (or run `stylegan ops build`)"


@ops_group.command("status")
def status():
    """Show which implementation each op will use, and why, without building anything.

    \b
    Example:
      stylegan ops status
    """
    tc = _build.toolchain()
    _echo_toolchain(tc)
    forced = os.environ.get("STYLEGAN_OPS_IMPL")
    if forced and forced not in IMPLS:
        raise click.ClickException(f"STYLEGAN_OPS_IMPL={forced!r} is not one of {', '.join(IMPLS)}")
    gpu = torch.cuda.is_available()
    click.echo(f"GPU visible:  {'yes' if gpu else 'no'}")
    for name in _build.OPS:
        if forced:
            impl, why = forced, "forced by STYLEGAN_OPS_IMPL"
            if forced == "cuda" and tc.problem:
                why += f"; it will fail: {tc.problem}"
        elif not gpu:
            impl, why = "fast", "no CUDA device visible (CPU tensors use the fast path)"
            missing = _build.missing_sources(name)
            if missing:
                why += f"; on a GPU too: {missing}"
        else:
            impl, why = _cuda_choice(name, tc)
        click.echo(f"{name:15s} {impl:5s} {why}")
