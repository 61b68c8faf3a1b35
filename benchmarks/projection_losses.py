"""Which loss reconstructs best when no perceptual network is at hand? PSNR after projecting
in-domain targets (images a network made from known latents) with each candidate loss.

    python benchmarks/projection_losses.py [--steps 200] [--targets 4]

Runs on the reference fixtures (tiny random-weight networks with their discriminators): the
numbers rank losses on arithmetic, not on what a trained network's images look like."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylegan  # noqa: E402
from stylegan.images import to_uint8  # noqa: E402
from stylegan.inversion import project_batch  # noqa: E402
from stylegan.inversion.losses import (DiscriminatorFeatures, FeatureDistance, MSSSIMDistance, PixelDistance,  # noqa: E402
                                       Sum)

REF = Path(os.environ.get("STYLEGAN_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference"))


def candidates(D):
    d = lambda: FeatureDistance(DiscriminatorFeatures(D))  # noqa: E731
    return {
        "pixels": lambda: PixelDistance(),
        "ms-ssim": lambda: MSSSIMDistance(),
        "D": d,
        "ms-ssim + pixels": lambda: Sum([(1.0, MSSSIMDistance()), (1.0, PixelDistance())]),
        "D + pixels": lambda: Sum([(1.0, d()), (1.0, PixelDistance())]),
        "D + ms-ssim + pixels": lambda: Sum([(1.0, d()), (1.0, MSSSIMDistance()), (1.0, PixelDistance())]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--targets", type=int, default=4)
    args = ap.parse_args()
    print(f"{'network':12s} {'space':5s} {'loss':22s} PSNR dB (mean of {args.targets} targets, {args.steps} steps)")
    for name in ("sg2ada_skip", "sg3_t"):
        nets = stylegan.load(REF / f"{name}.pkl")
        G, D = nets["G_ema"], nets["D"]
        z = torch.from_numpy(np.random.RandomState(2024).randn(args.targets, G.z_dim))
        with torch.no_grad():
            targets = to_uint8(G.synthesis(G.mapping(z, None), noise_mode="const"))    # [N, H, W, C] uint8
        want = targets
        for space in ("w", "w+"):
            for label, make in candidates(D).items():
                results = project_batch(G, targets, make(), space=space, num_steps=args.steps, seed=0)
                mse = [np.mean((r.image.astype(np.float64) - t) ** 2) for r, t in zip(results, want)]
                psnr = np.mean([10 * np.log10(255 ** 2 / m) for m in mse])
                print(f"{name:12s} {space:5s} {label:22s} {psnr:6.2f}", flush=True)


if __name__ == "__main__":
    main()
