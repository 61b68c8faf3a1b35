"""Metric speed on this machine, measured side by side in one process (no asserts), and the total time
of fid50k_full at the chosen resolution extrapolated from the parts.

- detectors: images/s through the Inception (FID/KID/IS) and VGG16 (PR) networks at the chosen input
  size, our modules (loaded as data) against the same weights run as TorchScript (what NVIDIA's code
  runs), random weights in NVIDIA's layout;
- FID's matrix square root: `trace_sqrtm_product` against scipy's `sqrtm` (NVIDIA's) on 2048x2048
  covariances of 4096 samples;
- generation: images/s of a random-init generator of the chosen config in NVIDIA's batches of 4;
- fid50k_full total = 50 000 x (generate + Inception) + N real x Inception + the formula, extrapolated.

    python benchmarks/metrics.py                         # stylegan2-256, 16 images per timing
    python benchmarks/metrics.py --config stylegan3-t-256 --images 32 --real 70000

Timings on a machine shared with other work move by tens of percent from run to run; the ratios of
two things timed alternately in one run are the numbers to read."""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylegan  # noqa: E402
from stylegan.metrics import networks, scores  # noqa: E402
from stylegan.progress import format_time  # noqa: E402


def _best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class _Scripted(torch.nn.Module):
    """The detector as a TorchScript module, as NVIDIA's metric code runs its detector files."""

    def __init__(self, net, method: str):
        super().__init__()
        self.net, self.method = net, method

    def forward(self, x):
        return getattr(self.net, self.method)(x)


def detectors(res: int, n: int, reps: int) -> dict[str, float]:
    rates = {}
    x = torch.randint(0, 256, [n, 3, res, res], dtype=torch.uint8)
    for name, net in (("inception", networks.InceptionV3()), ("vgg16", networks.VGG16())):
        net = net.eval().requires_grad_(False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")             # the tracer's notes on shape asserts
            scripted = torch.jit.trace(_Scripted(net, "features"), x[:1])
        with torch.no_grad():
            ours = _best(lambda: net.features(x), reps)
            script = _best(lambda: scripted(x), reps)
        rates[name] = n / ours
        print(f"{name:9s} features at {res}px: ours {n / ours:7.2f} img/s, TorchScript {n / script:7.2f} img/s "
              f"(ours/TorchScript {script / ours:.2f}x)")
    return rates


def sqrtm(reps: int) -> float:
    import scipy.linalg
    rng = np.random.default_rng(0)
    a = np.cov(rng.standard_normal((4096, 2048)), rowvar=False)
    b = np.cov(rng.standard_normal((4096, 2048)) * 1.1 + 0.1, rowvar=False)
    ours = _best(lambda: scores.trace_sqrtm_product(a, b), reps)
    start = time.perf_counter()
    s = scipy.linalg.sqrtm(a @ b)
    theirs = time.perf_counter() - start
    diff = abs(scores.trace_sqrtm_product(a, b) - np.trace(s).real) / np.trace(s).real
    print(f"FID sqrtm 2048x2048: ours {ours:.2f} s, scipy sqrtm {theirs:.2f} s ({theirs / ours:.1f}x faster; "
          f"traces agree to {diff:.1e} relative)")
    return ours


def generation(config: str, n: int, reps: int) -> float:
    G = stylegan.create_model(config).eval().requires_grad_(False)
    z, c = torch.randn([4, G.z_dim]), torch.zeros([4, G.c_dim])
    with torch.no_grad():
        G(z, c)                                     # first call: CPU kernel selection / compile
        per_batch = _best(lambda: [G(z, c) for _ in range(max(n // 4, 1))], reps) / max(n // 4, 1)
    print(f"generation {config}: {4 / per_batch:.2f} img/s (batches of 4, noise_mode='random')")
    return 4 / per_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="stylegan2-256", help="generator config (create_model)")
    parser.add_argument("--images", type=int, default=16, help="images per timing")
    parser.add_argument("--real", type=int, default=70000, help="real images in the data set (FFHQ: 70000)")
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    res = int(args.config.rsplit("-", 1)[1])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    rates = detectors(res, args.images, args.reps)
    formula = sqrtm(1)
    gen = generation(args.config, args.images, args.reps)
    total = 50000 / gen + 50000 / rates["inception"] + args.real / rates["inception"] + formula
    print(f"fid50k_full at {res}px, extrapolated: {format_time(total)} "
          f"(generate {format_time(50000 / gen)}, "
          f"Inception on 50000 generated {format_time(50000 / rates['inception'])}, "
          f"on {args.real} real {format_time(args.real / rates['inception'])} (cached after the first run), "
          f"formula {formula:.1f} s)")


if __name__ == "__main__":
    main()
