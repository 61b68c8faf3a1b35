"""`stylegan ops build|status`: compile the fused CUDA ops ahead of time, or see what will run."""
from __future__ import annotations

import sys

import click
import torch

import ops


def _echo_toolchain(tc: ops.Toolchain) -> None:
    click.echo(f"torch:        {torch.__version__} (CUDA {torch.version.cuda or 'none: CPU build'})")
    click.echo(f"CUDA root:    {tc.root or '-'}")
    click.echo(f"nvcc:         {tc.nvcc_version or '-'}")
    click.echo(f"archs:        {';'.join(tc.archs)}")
    click.echo(f"cache folder: {tc.cache}")


@click.group("ops", context_settings={"help_option_names": ["-h", "--help"]})
def ops_group():
    """Fused CUDA kernels for bias_act, upfirdn2d and filtered_lrelu; CPU kernels for filtered_lrelu
    and the 3x3 convolution (conv3x3, by Winograd's algorithm).

    They are compiled on first use (the CUDA ones with a CUDA tensor, the CPU ones when the CPU
    first needs them) and cached (STYLEGAN_OPS_CACHE, default ~/.cache/stylegan/ops). Before a CUDA
    kernel computes anything on a kind of GPU it runs once against the reference on small inputs;
    the verdict is stored with the build, and a kernel that fails it (or cannot launch) is replaced
    by the PyTorch path after one warning.
    STYLEGAN_OPS_IMPL=ref|fast|cuda forces an implementation; STYLEGAN_CPU_KERNELS=0 keeps the CPU
    on the PyTorch path.

    \b
    Examples:
      stylegan ops status
      stylegan ops build
      CUDA_HOME=/usr/local/cuda-13.0 TORCH_CUDA_ARCH_LIST="8.0;9.0" stylegan ops build
    """


@ops_group.command("build")
@click.argument("names", nargs=-1, type=click.Choice(list(dict.fromkeys(ops.CUDA_OPS + ops.CPU_OPS))))
@click.option("--cpu-only", is_flag=True, help="Build only the CPU kernels (for CPU-only machines).")
def build(names, cpu_only):
    """Compile the ops now (all, or NAMES) and report built / cached / failed per op.

    The CPU kernels (filtered_lrelu, conv3x3) are built as well, unless NAMES leave them out. With a
    GPU visible, each CUDA op also runs its check against the reference there. Exits non-zero if any
    op failed to build or its check.

    \b
    Examples:
      stylegan ops build
      stylegan ops build upfirdn2d
    """
    tc = ops.toolchain()
    _echo_toolchain(tc)
    failed = 0
    results = [] if cpu_only else [ops.build(name, tc) for name in names or ops.CUDA_OPS if name in ops.CUDA_OPS]
    results += [ops.build_cpu(name) for name in ops.CPU_OPS if not names or name in names]
    for r in results:
        detail = r.reason if r.status == "failed" else f"{r.seconds:.1f} s, {r.path}"
        if r.check is not None:
            detail += f"; check {r.check}"
        click.echo(f"{r.name:20s} {r.status:7s} {detail}")
        failed += r.status == "failed" or (r.check is not None and not r.check.ok)
    if failed:
        click.echo(f"Error: {failed} op(s) failed to build or their check; the PyTorch path will be used for "
                   f"them.", err=True)
        sys.exit(1)


@ops_group.command("status")
def status():
    """Show which implementation each op will use, and why, without building or running anything
    (the stored verdicts of the kernels' first-use checks included).

    \b
    Example:
      stylegan ops status
    """
    tc = ops.toolchain()
    try:
        table = ops.build_status(tc)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    _echo_toolchain(tc)
    click.echo(f"GPU visible:  {'yes' if torch.cuda.is_available() else 'no'}")
    for row in table:
        click.echo(f"{row.name:20s} {row.impl:5s} {row.reason}")
    for name in ops.CPU_OPS:
        row = ops.cpu_status(name)
        click.echo(f"{name + ' (cpu)':20s} {row.impl:5s} {row.reason}")
