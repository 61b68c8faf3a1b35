"""bf16 synthesis on the CPU (`G(z, c, dtype=torch.bfloat16)`) against float32: speed and image drift,
on the same random-init network, in one process (no asserts).

Per config it prints float32 and bf16 img/s (best of --reps, the two alternating after a warm-up
each) and their ratio, then how far the bf16 images drift from the float32 ones over the seeds'
images (seed N = NVIDIA's z for seed N, no truncation, const noise): PSNR of the uint8 images
(peak 255), the share of uint8 values that differ at all and by more than 2 levels, the largest
difference, and the RMS of the float difference relative to the RMS of the float32 image (the
drift in levels grows with the image's scale; this ratio does not).

    python benchmarks/bf16.py                                   # stylegan2-256, stylegan2-1024, stylegan3-t-256
    python benchmarks/bf16.py --config stylegan3-r-256 --batch 1 4 --seeds 16
    python benchmarks/bf16.py --config stylegan2-256 --reps 1 --seeds 2   # quick"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylegan  # noqa: E402
from stylegan.images import to_uint8  # noqa: E402
from stylegan.pipelines import map_seeds  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare_speed(G, n: int, reps: int) -> dict[str, float]:
    """Seconds per batch of n, best of `reps`, float32 and bf16 alternating after one warm-up each."""
    ws = G.mapping(torch.randn(n, G.z_dim), None)
    run = {name: (lambda dtype=dtype: G.synthesis(ws, noise_mode="const", dtype=dtype)) for name, dtype in DTYPES.items()}
    for fn in run.values():
        fn()
    best = {name: float("inf") for name in run}
    for _ in range(reps):
        for name, fn in run.items():
            best[name] = min(best[name], _timed(fn))
    return best


def drift(G, seeds: range) -> dict[str, float]:
    """bf16 images against float32 ones, seed by seed (batch 1, as a single image is made)."""
    diffs, sq_err, sq_ref = [], 0.0, 0.0
    for ws in map_seeds(G, seeds).split(1):
        ref = G.synthesis(ws, noise_mode="const", dtype=torch.float32)
        low = G.synthesis(ws, noise_mode="const", dtype=torch.bfloat16)
        assert low.dtype == torch.float32 and low.shape == ref.shape
        sq_err += (low - ref).square().sum().item()
        sq_ref += ref.square().sum().item()
        diffs.append(np.abs(to_uint8(low).astype(np.int16) - to_uint8(ref).astype(np.int16)).ravel())
    d = np.concatenate(diffs)
    mse = float(np.mean(d.astype(np.float64) ** 2))
    return dict(psnr=10 * np.log10(255 ** 2 / mse) if mse > 0 else float("inf"), off=float(np.mean(d > 0)),
                off2=float(np.mean(d > 2)), max=int(d.max()), rel=(sq_err / sq_ref) ** 0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", default=["stylegan2-256", "stylegan2-1024", "stylegan3-t-256"],
                    help="create_model configs")
    ap.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes to time")
    ap.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1 for the drift")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"{torch.get_num_threads()} threads; oneDNN bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}; "
          f"drift over seeds 0-{a.seeds - 1}")
    print(f"{'config':16s} {'batch':>5s} {'fp32 img/s':>10s} {'bf16 img/s':>10s} {'ratio':>6s} "
          f"{'PSNR dB':>7s} {'off>0':>7s} {'off>2':>7s} {'max':>4s} {'rel err':>8s}")
    with torch.inference_mode():
        for config in a.config:
            torch.manual_seed(0)
            G = stylegan.create_model(config).eval()
            d = drift(G, range(a.seeds))
            for n in a.batch:
                t = compare_speed(G, n, a.reps)
                print(f"{config:16s} {n:5d} {n / t['fp32']:10.3f} {n / t['bf16']:10.3f} {t['fp32'] / t['bf16']:6.2f} "
                      f"{d['psnr']:7.1f} {d['off']:7.2%} {d['off2']:7.2%} {d['max']:4d} {d['rel']:8.2%}", flush=True)


if __name__ == "__main__":
    main()
