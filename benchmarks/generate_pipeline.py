"""End-to-end `stylegan generate` (mapping, synthesis, uint8, PNG encode and write) against the bare
generator forward pass, measured side by side in one run. The ratio is the pipeline's overhead.

    python benchmarks/generate_pipeline.py [--config stylegan2-256] [--images 32] [--batch 8]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

import stylegan
from stylegan.pipelines import map_seeds, write_image_set


def bare(G, seeds, batch: int) -> float:
    """images/s of mapping + synthesis alone, in the same batches, with nothing written."""
    start = time.perf_counter()
    with torch.inference_mode():
        for k in range(0, len(seeds), batch):
            ws = map_seeds(G, seeds[k:k + batch])
            G.synthesis(ws, noise_mode="const")
    return len(seeds) / (time.perf_counter() - start)


def end_to_end(G, seeds, batch: int) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        start = time.perf_counter()
        write_image_set(G, seeds, outdir, batch_size=batch, progress=None)
        return len(seeds) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="stylegan2-256", help="a registered config (random weights)")
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    torch.manual_seed(0)
    G = stylegan.create_model(args.config).eval().requires_grad_(False).to(args.device)
    seeds = list(range(args.images))
    bare(G, seeds[: args.batch], args.batch)  # warm-up: allocator, kernels
    # Interleave the two measurements so drift in machine load hits both alike.
    b1, e1 = bare(G, seeds, args.batch), end_to_end(G, seeds, args.batch)
    b2, e2 = bare(G, seeds, args.batch), end_to_end(G, seeds, args.batch)
    b, e = max(b1, b2), max(e1, e2)
    print(f"{args.config} on {args.device}, {args.images} images, batch {args.batch}")
    print(f"  bare forward : {b:8.3f} img/s")
    print(f"  end to end   : {e:8.3f} img/s   (PNG written)")
    print(f"  ratio        : {e / b:8.3f}   (1.0 = no pipeline overhead)")


if __name__ == "__main__":
    main()
