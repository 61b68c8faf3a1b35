"""Fused CUDA ops vs the reference path on a GPU: each op, then whole generators (no asserts).

    python benchmarks/ops_cuda.py [--quick] [--batch 1 32] [--models stylegan2-256 ...]

Builds the kernels first (`stylegan ops build` equivalent) and prints ref ms, cuda ms and ref/cuda."""
import argparse
import sys
import time

import torch

import ops
import stylegan
from ops import _build

MODELS = ["stylegan2-256", "stylegan2-1024", "stylegan3-t-256", "stylegan3-t-1024"]


def gpu_ms(fn, reps):
    """Mean ms per call; synchronise around the timed loop since CUDA launches are asynchronous."""
    fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps * 1e3


def op_cases(n, dev):
    g = torch.Generator(device=dev).manual_seed(0)
    f4 = ops.setup_filter([1, 3, 3, 1], device=dev)
    f12 = ops.setup_filter(torch.rand(12, generator=g, device=dev) + 0.1, device=dev)
    x = torch.randn(n, 256, 84, 84, generator=g, device=dev)
    b = torch.randn(256, generator=g, device=dev)
    y = torch.randn(n, 128, 128, 128, generator=g, device=dev)
    return [
        (f"bias_act lrelu N={n} 128x128", lambda: ops.bias_act(y, b[:128], act="lrelu", clamp=256)),
        (f"upfirdn2d up2 12tap N={n} 256x84", lambda: ops.upfirdn2d(x, f12, up=2, padding=10, gain=4)),
        (f"upsample2d [1,3,3,1] N={n} 128x128", lambda: ops.upsample2d(y, f4)),
        (f"filtered_lrelu up2/down2 N={n} 256x84",
         lambda: ops.filtered_lrelu(x, f12, f12, b, up=2, down=2, padding=10, clamp=256)),
    ]


def generator_case(name, n, dev):
    G = stylegan.create_model(name).eval().to(dev)
    z = torch.randn(n, G.z_dim, device=dev)
    return f"{name} N={n}", lambda: G(z, None)


def row(label, fn, reps):
    try:
        with ops.use_impl("ref"):
            tr = gpu_ms(fn, reps)
        with ops.use_impl("cuda"):
            tc = gpu_ms(fn, reps)
        print(f"{label:42s} {tr:9.2f} {tc:9.2f} {tr / tc:9.2f}", flush=True)
    except torch.cuda.OutOfMemoryError:
        print(f"{label:42s} out of GPU memory", flush=True)
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="batch 1, 256 px models, 3 reps")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("ops_cuda.py needs a CUDA GPU (torch.cuda.is_available() is False); "
                 "use benchmarks/ops_cpu.py on CPU-only machines")
    if a.quick:
        a.batch, a.reps, a.models = [1], 3, [m for m in a.models if m.endswith("-256")]
    tc = _build.toolchain()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA root {tc.root}, archs {tc.archs}")
    for name in _build.OPS:
        r = _build.build_op(name, tc=tc)
        print(f"  {name:15s} {r.status} {r.reason or f'{r.seconds:.1f} s'}")
    dev = torch.device("cuda")
    print(f"{'case':42s} {'ref ms':>9s} {'cuda ms':>9s} {'ref/cuda':>9s}")
    with torch.inference_mode():
        for n in a.batch:
            for label, fn in op_cases(n, dev):
                row(label, fn, a.reps)
        for name in a.models:
            for n in a.batch:
                label, fn = generator_case(name, n, dev)
                row(label, fn, max(1, a.reps // (4 if "1024" in name else 1)))
                del fn
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
