"""Time each op with impl='ref' vs 'fast' at network-typical sizes; prints a ratio table (no asserts).

A second table puts the compiled Winograd 3x3 kernel (ops/conv3x3.py) beside oneDNN's direct
convolution at StyleGAN2's layer shapes, with each one's error against float64.

    python benchmarks/ops_cpu.py [--reps 3] [--threads 2]"""
import argparse
import time

import torch
import torch.nn.functional as F

import ops
from ops import conv3x3


def bench(fn, reps):
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    f4 = ops.setup_filter([1, 3, 3, 1])
    f12 = ops.setup_filter(torch.rand(12, generator=g) + 0.1)
    rad = ops.setup_filter(torch.rand(6, 6, generator=g) + 0.1)
    cases = []
    for c, s in [(512, 36), (256, 84), (64, 276)]:
        x = torch.randn(1, c, s, s, generator=g)
        b = torch.randn(c, generator=g)
        cases.append((f"filtered_lrelu up2/down2 12tap {c}x{s}", lambda i, x=x, b=b: ops.filtered_lrelu(
            x, f12, f12, b, up=2, down=2, padding=10, clamp=256, impl=i)))
        cases.append((f"upfirdn2d up2 12tap {c}x{s}", lambda i, x=x: ops.upfirdn2d(x, f12, up=2, padding=10, gain=4, impl=i)))
    x = torch.randn(1, 128, 64, 64, generator=g)
    cases.append(("filtered_lrelu radial 6x6 up2 128x64", lambda i: ops.filtered_lrelu(x, rad, rad, up=2, down=2, padding=5, impl=i)))
    cases.append(("upsample2d [1,3,3,1] 128x64", lambda i: ops.upsample2d(x, f4, impl=i)))
    cases.append(("downsample2d [1,3,3,1] 128x64", lambda i: ops.downsample2d(x, f4, impl=i)))
    for n in (1, 4):
        xm = torch.randn(n, 256, 64, 64, generator=g)
        wm = torch.randn(256, 256, 3, 3, generator=g)
        sm = torch.randn(n, 256, generator=g)
        for fused in (True, False):
            cases.append((f"modconv up2 N={n} 256x64 fused={fused}", lambda i, xm=xm, wm=wm, sm=sm, fused=fused: ops.modulated_conv2d(
                xm, wm, sm, up=2, padding=1, resample_filter=f4, fused_modconv=fused, impl=i)))
    print(f"{'op':48s} {'ref ms':>9s} {'fast ms':>9s} {'ref/fast':>9s}")
    with torch.inference_mode():
        for name, fn in cases:
            tr, tf = bench(lambda: fn("ref"), a.reps), bench(lambda: fn("fast"), a.reps)
            print(f"{name:48s} {tr * 1e3:9.1f} {tf * 1e3:9.1f} {tr / tf:9.2f}", flush=True)
    winograd_table(g, a.reps)


def winograd_table(g, reps):
    print(f"\n{'3x3 conv, N x C x size':28s} {'oneDNN ms':>9s} {'Winograd ms':>11s} {'ratio':>6s} "
          f"{'oneDNN err':>10s} {'Winograd err':>12s}")
    for n, c, size in [(1, 512, 4), (1, 512, 8), (1, 512, 16), (1, 512, 32), (1, 256, 64), (1, 128, 128),
                       (1, 64, 256), (1, 64, 512), (1, 32, 512), (1, 32, 1024), (1, 16, 256), (4, 256, 64)]:
        x = torch.randn(n, c, size, size, generator=g).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c, c, 3, 3, generator=g) / (9 * c) ** 0.5
        with torch.inference_mode():
            want = F.conv2d(x.double(), w.double(), padding=1)
            direct, wino = F.conv2d(x, w, padding=1), conv3x3.conv3x3(x, w)
            if wino is None:
                print("the conv3x3 CPU kernel is not available here")
                return
            td, tw = bench(lambda: F.conv2d(x, w, padding=1), reps), bench(lambda: conv3x3.conv3x3(x, w), reps)
        err = lambda y: ((y.double() - want).abs().max() / want.abs().max()).item()  # noqa: E731
        print(f"{f'{n} x {c} x {size}':28s} {td * 1e3:9.2f} {tw * 1e3:11.2f} {td / tw:6.2f} {err(direct):10.1e} "
              f"{err(wino):12.1e}", flush=True)


if __name__ == "__main__":
    main()
