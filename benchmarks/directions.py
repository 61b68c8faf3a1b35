"""Time to find editing directions with each method, per config (random-init networks; no asserts).

    python benchmarks/directions.py                                  # stylegan2-1024, stylegan3-t-1024
    python benchmarks/directions.py --config stylegan2-256 --render-samples 16 --stylespace

SeFa, GANSpace and InterFaceGAN from scores held in a dict (as read from a CSV) only map latents;
InterFaceGAN with an image scorer (--render-samples N; a stand-in scorer, so the time is the
rendering's) and StyleSpace (--stylespace: 8 probes, each a forward and a backward pass) render
images, which is what dominates them at 1024 px on a CPU."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylegan  # noqa: E402
from stylegan.editing import ganspace, interfacegan, sefa, stylespace  # noqa: E402


def timed(label: str, fn) -> None:
    start = time.perf_counter()
    fn()
    print(f"  {label:48s} {time.perf_counter() - start:8.1f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", default=["stylegan2-1024", "stylegan3-t-1024"])
    ap.add_argument("--ganspace-samples", type=int, default=100_000)
    ap.add_argument("--csv-samples", type=int, default=10_000, help="seeds scored in the dict (CSV) case")
    ap.add_argument("--render-samples", type=int, default=0, help="InterFaceGAN with an image scorer: images")
    ap.add_argument("--stylespace", action="store_true", help="also StyleSpace channels of one latent")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    for config in a.config:
        G = stylegan.create_model(config).eval().requires_grad_(False)
        print(f"{config}:")
        timed("SeFa, all layers, 16 components", lambda: sefa(G, "all", 16))
        timed(f"GANSpace, {a.ganspace_samples} samples, 64 components",
              lambda: ganspace(G, num_samples=a.ganspace_samples, num_components=64))
        scores = dict(enumerate(rng.standard_normal(a.csv_samples).tolist()))
        timed(f"InterFaceGAN, {a.csv_samples} seeds scored in a dict", lambda: interfacegan(G, scores))
        if a.render_samples:
            brightness = lambda img: float(np.asarray(img, dtype=np.float64).mean())  # noqa: E731
            timed(f"InterFaceGAN, image scorer, {a.render_samples} images",
                  lambda: interfacegan(G, brightness, num_samples=a.render_samples, ratio=0.25, batch_size=4))
        if a.stylespace:
            ws = G.mapping(torch.randn(1, G.z_dim), None)
            mask = np.zeros([G.img_resolution] * 2, bool)
            mask[: G.img_resolution // 2] = True
            timed("StyleSpace, one latent, 8 probes", lambda: stylespace(G, ws, mask, probes=8))


if __name__ == "__main__":
    main()
