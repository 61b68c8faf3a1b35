"""Projection speed on the CPU, side by side in one process (no asserts):

  * seconds per step, our ops ('fast') against NVIDIA's arithmetic (the literal 'ref' ops),
    alternating, on the same network, target and feature network;
  * a folder of targets: one batched projection against one projection per target;
  * with --memory, the peak memory of projection steps both ways, each in a fresh process (the
    growth of the peak resident set over the process's size before the steps).

    python benchmarks/projection.py [--config stylegan2-256] [--steps 10] [--targets 16]
    python benchmarks/projection.py --config stylegan2-1024 --memory

The feature network is the fixtures' LPIPS-shaped stand-in (no VGG16 can be downloaded here), so
the perceptual part costs less than with the real vgg16.pt; the generator's forward and backward,
which dominate, are the real thing. Networks are random-init at the config's full size."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import ops  # noqa: E402
import stylegan  # noqa: E402
from stylegan.images import to_uint8  # noqa: E402
from stylegan.inversion import load_feature_net, project_batch  # noqa: E402

REF = Path(os.environ.get("STYLEGAN_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference"))


def seconds_per_step(G, targets, net, impl, steps):
    with ops.use_impl(impl):
        project_batch(G, targets, net, num_steps=1, w_avg_samples=1000, seed=0)            # warm-up
        t = time.perf_counter()
        project_batch(G, targets, net, num_steps=steps, w_avg_samples=1000, seed=0)
    return (time.perf_counter() - t) / steps


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_growth_mb(config: str, impl: str, steps: int) -> float:
    """In this process: the peak resident set of `steps` projection steps above the size before them."""
    G = stylegan.create_model(config).eval().requires_grad_(False)
    net = load_feature_net(REF / "lpips_standin.pt")
    target = np.random.RandomState(0).randint(0, 256, [1, G.img_resolution, G.img_resolution, 3], dtype=np.uint8)
    with open("/proc/self/clear_refs", "w") as f:   # resets the kernel's peak (VmHWM) to the current size
        f.write("5")
    before = _status_kb("VmRSS")
    with ops.use_impl(impl):
        project_batch(G, target, net, num_steps=steps, w_avg_samples=1000, seed=0)
    return (_status_kb("VmHWM") - before) / 1024


def memory(config: str, threads: int, steps: int = 2) -> None:
    peaks = {}
    for impl in ("ref", "fast"):
        out = subprocess.run([sys.executable, __file__, "--config", config, "--threads", str(threads),
                              "--steps", str(steps), "--probe", impl], capture_output=True, text=True, check=True)
        peaks[impl] = float(out.stdout.split()[-1])
    print(f"{config}: peak memory of {steps} projection steps  NVIDIA arithmetic {peaks['ref']:.0f} MB  "
          f"ours {peaks['fast']:.0f} MB  ratio {peaks['fast'] / peaks['ref']:.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="stylegan2-256")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--targets", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8, help="targets per batched projection")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory", action="store_true", help="also compare the peak memory of projection steps")
    ap.add_argument("--probe", choices=["ref", "fast"], help=argparse.SUPPRESS)  # one side of --memory
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.probe:
        print(peak_growth_mb(a.config, a.probe, a.steps))
        return
    if a.memory:
        memory(a.config, a.threads)
    G = stylegan.create_model(a.config).eval().requires_grad_(False)
    net = load_feature_net(REF / "lpips_standin.pt")
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(1).randn(a.targets, G.z_dim))
        targets = to_uint8(G(z, None, noise_mode="const"))                  # [N, H, W, C] uint8

    one = targets[:1]
    ref, fast = [], []
    for _ in range(2):   # alternate, so drift in machine load hits both
        ref.append(seconds_per_step(G, one, net, "ref", a.steps))
        fast.append(seconds_per_step(G, one, net, "fast", a.steps))
    r, f = min(ref), min(fast)
    print(f"{a.config}: one target, s/step  NVIDIA arithmetic {r:.3f}  ours {f:.3f}  speed-up {r / f:.2f}x")

    t = time.perf_counter()
    for i in range(a.targets):
        project_batch(G, targets[i:i + 1], net, num_steps=a.steps, w_avg_samples=1000, seed=0)
    seq = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, a.targets, a.batch):
        project_batch(G, targets[i:i + a.batch], net, num_steps=a.steps, w_avg_samples=1000, seed=0)
    bat = time.perf_counter() - t
    print(f"{a.config}: {a.targets} targets x {a.steps} steps  one at a time {seq:.1f} s  "
          f"batches of {a.batch} {bat:.1f} s  speed-up {seq / bat:.2f}x")


if __name__ == "__main__":
    main()
