"""Time each op with impl='ref' vs 'fast' at network-typical sizes; prints a ratio table (no asserts)."""
import argparse
import time

import torch

import ops


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


if __name__ == "__main__":
    main()
