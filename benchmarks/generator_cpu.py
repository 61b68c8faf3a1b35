"""Generator speed on the CPU: our ops ('fast') against NVIDIA's arithmetic ('ref'), side by side in one
process, alternating, on the same random-init network (no asserts).

Per config and batch it prints img/s both ways and their ratio, the FLOPs of one image (counted on
the reference path), and the GFLOP/s ours achieves against this machine's measured 3x3-convolution
peak (512 channels, 64x64), so the distance to the roofline is visible too.

    python benchmarks/generator_cpu.py                       # stylegan2-256 and stylegan3-t-256, batch 1 and 4
    python benchmarks/generator_cpu.py --config stylegan2-1024 stylegan3-t-1024 stylegan3-r-256 --batch 1
    python benchmarks/generator_cpu.py --quick                # batch 1, one rep"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ops  # noqa: E402
import stylegan  # noqa: E402


def conv_peak_gflops(reps: int = 3) -> float:
    """The best GFLOP/s of a 512->512 3x3 convolution at 64x64: what this machine's conv can do."""
    x, w = torch.randn(1, 512, 64, 64), torch.randn(512, 512, 3, 3)
    F.conv2d(x, w, padding=1)
    best = min(_timed(lambda: F.conv2d(x, w, padding=1)) for _ in range(reps))
    return 2 * 512 * 512 * 9 * 64 * 64 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def flops_per_image(G, impl: str = "ref") -> float:
    z = torch.randn(1, G.z_dim)
    with ops.use_impl(impl), FlopCounterMode(display=False) as counter:
        G(z, None, noise_mode="const")
    return counter.get_total_flops()


def compare(G, n: int, reps: int) -> dict[str, float]:
    """Seconds per batch, best of `reps`, 'ref' and 'fast' alternating after one warm-up each."""
    z = torch.randn(n, G.z_dim)
    best = {"ref": float("inf"), "fast": float("inf")}
    for impl in best:
        with ops.use_impl(impl):
            G(z, None, noise_mode="const")
    for _ in range(reps):
        for impl in best:
            with ops.use_impl(impl):
                best[impl] = min(best[impl], _timed(lambda: G(z, None, noise_mode="const")))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", "--arch", nargs="+", default=["stylegan2-256", "stylegan3-t-256"],
                    help="create_model configs (an arch name without '-RES' means -256)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="batch 1, one timed rep")
    a = ap.parse_args()
    if a.quick:
        a.batch, a.reps = [1], 1
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with torch.inference_mode():
        peak = conv_peak_gflops()
        print(f"{torch.get_num_threads()} threads; 3x3 conv peak {peak:.0f} GFLOP/s")
        print(f"{'config':18s} {'batch':>5s} {'NVIDIA img/s':>12s} {'ours img/s':>10s} {'ratio':>6s} "
              f"{'GFLOP/img':>9s} {'ours GFLOP/s':>12s} {'of peak':>7s}")
        for config in a.config:
            config = config if config[-1].isdigit() else f"{config}-256"
            G = stylegan.create_model(config).eval()
            gflop = flops_per_image(G) / 1e9
            for n in a.batch:
                t = compare(G, n, a.reps)
                ours = n * gflop / t["fast"]
                print(f"{config:18s} {n:5d} {n / t['ref']:12.3f} {n / t['fast']:10.3f} {t['ref'] / t['fast']:6.2f} "
                      f"{gflop:9.1f} {ours:12.0f} {ours / peak:7.0%}", flush=True)


if __name__ == "__main__":
    main()
