"""What autograd keeps for filtered_lrelu's backward on the fused path: ours against NVIDIA's kernel.

For each StyleGAN3 layer (at the dtype it runs in on a GPU: float16 for the num_fp16_res highest
resolutions) it prints the bytes kept for the backward beyond what is resident anyway (weights,
filters, biases):
  - ours:    measured with saved-tensor hooks (torch_utils.saved_tensors) through the fused op's
             autograd, the kernels' host code deciding every shape;
  - NVIDIA:  its filtered_lrelu's own rule, 2-bit signs rounded to 16 per row (tests/op_cases.py);
  - before:  what our backward kept until it stored signs: x itself, to recompute the pre-activation.
Then the whole generator forward (mapping, synthesis, every op, float32 throughout), measured by
the same hooks, and the same total with NVIDIA's or the old filtered_lrelu in place of ours.

Tensors live on the meta device (shapes only, nothing computed), so batch 32 at 1024 px runs on any
machine in seconds; tests/test_ops_kernel_edges.py checks that a real forward keeps the same bytes.

    python benchmarks/ops_memory.py                                   # SG3-T/R at 256 and 1024, batch 32
    python benchmarks/ops_memory.py --configs stylegan3-t-1024 --batch 4 --layers
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the CPU build of the kernels' host code; NVIDIA's rule
import cpu_kernels  # noqa: E402
import ops  # noqa: E402
import stylegan  # noqa: E402
from ops import cuda_ops  # noqa: E402
from op_cases import nvidia_filtered_lrelu_kept_bytes  # noqa: E402
from torch_utils.saved_tensors import SavedTensors  # noqa: E402

CONFIGS = ["stylegan3-t-256", "stylegan3-r-256", "stylegan3-t-1024", "stylegan3-r-1024"]
MB = 2 ** 20


def layers(G):
    """(name, x shape at batch 1, dtype on a GPU, filtered_lrelu kwargs) for each synthesis layer."""
    for name, layer in G.synthesis.named_children():
        if not hasattr(layer, "up_factor"):
            continue
        side = int(layer.in_size[0]) + layer.conv_kernel - 1  # the 'full' convolution's output
        dtype = torch.float16 if layer.use_fp16 else torch.float32
        kw = dict(fu=layer.up_filter, fd=layer.down_filter, up=layer.up_factor, down=layer.down_factor,
                  padding=layer.padding, gain=1 if layer.is_torgb else 2 ** 0.5, slope=1 if layer.is_torgb else 0.2,
                  clamp=layer.conv_clamp)
        yield name, (1, layer.out_channels, side, side), dtype, kw


def kept_by_layer(shape, dtype, kw):
    """(ours, NVIDIA's, before) bytes for one filtered_lrelu call with gradients to x and b."""
    meta = lambda t: None if t is None else t.to("meta")
    fu, fd = meta(kw["fu"]), meta(kw["fd"])
    x = torch.empty(shape, device="meta", dtype=dtype, requires_grad=True)
    b = torch.empty(shape[1], device="meta", dtype=dtype, requires_grad=True)
    with SavedTensors(exclude=[t for t in (fu, fd, b) if t is not None]) as saved, ops.use_impl("cuda"):
        ops.filtered_lrelu(x, b=b, **dict(kw, fu=fu, fd=fd))
    shapes = [None if f is None else tuple(f.shape) for f in (kw["fu"], kw["fd"])]
    nvidia = nvidia_filtered_lrelu_kept_bytes(shape, *shapes, kw["up"], kw["down"], kw["padding"])
    return saved.nbytes, nvidia, x.numel() * x.element_size()


def whole_forward(G, batch):
    """Bytes the whole generator forward keeps for its backward (float32, impl 'cuda')."""
    G = G.to("meta").requires_grad_(True)
    z = torch.empty(batch, G.z_dim, device="meta")
    with SavedTensors(exclude=[*G.parameters(), *G.buffers()]) as saved, ops.use_impl("cuda"):
        G(z, None)
    return saved.nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=CONFIGS)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--layers", action="store_true", help="print every layer, not only the totals")
    a = ap.parse_args()
    K = cpu_kernels.load()
    cuda_ops.kernels = lambda name, x: K  # impl 'cuda' on meta tensors: the kernels' host code, no maths
    print(f"batch {a.batch}; MB = 2^20 bytes; filtered_lrelu at each layer's GPU dtype; forward in float32")
    print(f"{'config':18s} {'layers':>6s} {'NVIDIA MB':>10s} {'ours MB':>9s} {'ours/NV':>8s} {'max/layer':>9s} "
          f"{'before MB':>10s} | {'forward MB':>10s} {'w/ NVIDIA':>10s} {'w/ before':>10s}")
    for config in a.configs:
        G = stylegan.create_model(config).eval()
        rows = [(name, shape, dtype, *kept_by_layer((a.batch, *shape[1:]), dtype, kw))
                for name, shape, dtype, kw in layers(G)]
        if a.layers:
            print(f"{config}:")
            for name, shape, dtype, ours, nvidia, before in rows:
                print(f"  {name:14s} {str(list((a.batch, *shape[1:]))):20s} {str(dtype)[6:]:8s} "
                      f"NVIDIA {nvidia / MB:9.1f}  ours {ours / MB:9.1f}  ({ours / nvidia:.3f})  before {before / MB:9.1f}")
        ours, nvidia, before = (sum(r[i] for r in rows) for i in (3, 4, 5))
        # The whole forward in float32: the layers' share recomputed at float32 for the substitutions.
        f32 = [kept_by_layer((a.batch, *shape[1:]), torch.float32, kw) for _, shape, _, kw in layers(G)]
        total = whole_forward(G, a.batch)
        ours32, nvidia32, before32 = (sum(r[i] for r in f32) for i in range(3))
        worst = max(r[3] / r[4] for r in rows)
        print(f"{config:18s} {len(rows):6d} {nvidia / MB:10.1f} {ours / MB:9.1f} {ours / nvidia:8.3f} {worst:9.3f} "
              f"{before / MB:10.1f} | {total / MB:10.1f} {(total - ours32 + nvidia32) / MB:10.1f} "
              f"{(total - ours32 + before32) / MB:10.1f}", flush=True)


if __name__ == "__main__":
    main()
