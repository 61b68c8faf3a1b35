"""Generator images/s at 256 px with ops.use_impl('ref') vs ('fast'), side by side (no asserts).

    python benchmarks/generator_cpu.py [--quick] [--batch 1 4] [--arch stylegan2 stylegan3-t]"""
import argparse
import time

import torch

import ops
import stylegan

def build(arch):
    return stylegan.create_model(f"{arch}-256").eval()


def images_per_s(G, n, impl, reps):
    z = torch.randn(n, G.z_dim)
    with ops.use_impl(impl):
        G(z, None)  # warm-up
        t = time.perf_counter()
        for _ in range(reps):
            G(z, None)
    return n * reps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="batch 1 only, one timed rep")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--arch", nargs="+", default=["stylegan2", "stylegan3-t"])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.quick:
        a.batch, a.reps = [1], 1
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f"{'arch':12s} {'batch':>5s} {'ref img/s':>10s} {'fast img/s':>10s} {'fast/ref':>8s}")
    with torch.inference_mode():
        for arch in a.arch:
            G = build(arch).eval()
            for n in a.batch:
                r, f = images_per_s(G, n, "ref", a.reps), images_per_s(G, n, "fast", a.reps)
                print(f"{arch:12s} {n:5d} {r:10.3f} {f:10.3f} {f / r:8.2f}", flush=True)


if __name__ == "__main__":
    main()
