"""Training speed and memory on the CPU: our loop against NVIDIA's, same config, side by side (no asserts).

    python benchmarks/training.py --nvidia-ada PATH --nvidia-sg3 PATH [--configs sg2,sg3t] [--repeats 3]

PATH is an unpacked checkout of NVlabs/stylegan2-ada-pytorch (for the StyleGAN2 config) or
NVlabs/stylegan3 (for StyleGAN3-T); without it only our side runs. NVIDIA's `training_loop()` runs
unmodified: this script only patches, from outside and in its own process, what the CPU lacks (the CUDA
device, events and memory counters, `pin_memory`, `psutil`, `pkg_resources`), a Sampler constructor
torch 2.2+ refuses, the setup's 1024-image grid (cut to 32 images) and snapshots (off). Both sides get
the setup our `--cfg` resolves (float32, no clamp: what a CPU trains), the same synthetic data set, 0
data workers and the same thread count; each run is a fresh process, the two alternate, `--repeats`
times.

Reported per run: sec/kimg, the median of the ticks after the first (NVIDIA's own Timing/sec_per_kimg
from stats.jsonl, ours likewise), and the process's peak resident memory. The machine may be shared:
read the ratio of each pair, not the absolute numbers, and repeat."""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# (--cfg, our TrainingOptions) per config: 32 px, capacities a CPU trains in seconds per tick.
CONFIGS = {
    "sg2": dict(cfg="stylegan2", batch=8, cbase=4096, cmax=64, map=2),
    "sg3t": dict(cfg="stylegan3-t", batch=8, cbase=2048, cmax=64, gamma=1.0),
}


def make_data(path: Path, n: int = 64, res: int = 32) -> Path:
    from PIL import Image
    rnd = np.random.RandomState(0)
    yy, xx = np.mgrid[0:res, 0:res] / res
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for i in range(n):
            c, (cx, cy) = rnd.rand(3), rnd.rand(2)
            img = (np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) * 8)[..., None] * c * 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="png")
            z.writestr(f"00000/img{i:08d}.png", buf.getvalue())
    return path


def options(config: str, data: str, outdir: str, kimg: float, tick: float):
    from stylegan.training.config import TrainingOptions
    return TrainingOptions(data=data, outdir=outdir, kimg=kimg, tick=tick, snap=10 ** 6, metrics=(), workers=0,
                           **CONFIGS[config])


def sec_per_kimg(stats_jsonl: Path) -> float:
    ticks = [json.loads(line)["Timing/sec_per_kimg"]["mean"] for line in stats_jsonl.read_text().splitlines()]
    return float(np.median(ticks[1:] if len(ticks) > 1 else ticks))


# ----------------------------------------------------------------------------------------------
# One run in this process (child mode).


def run_ours(args) -> Path:
    from stylegan.training.loop import train
    result = train(options(args.config, args.data, args.outdir, args.kimg, args.tick), device="cpu")
    return result.run_dir / "stats.jsonl"


def run_nvidia(args) -> Path:
    """NVIDIA's training_loop() with our resolved setup, its CUDA assumptions patched from outside."""
    import types

    import torch
    from packaging.version import parse as parse_version
    shim = types.ModuleType("pkg_resources")
    shim.parse_version = parse_version
    sys.modules.setdefault("pkg_resources", shim)
    ps = types.ModuleType("psutil")
    ps.Process = lambda pid=None: types.SimpleNamespace(memory_info=lambda: types.SimpleNamespace(
        rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
    sys.modules.setdefault("psutil", ps)
    sys.path.insert(0, args.nvidia)
    torch.Tensor.pin_memory = lambda self, *a, **k: self
    torch.utils.data.Sampler.__init__ = lambda self, *a, **k: None
    from training import training_loop

    class CpuTorch:
        """training_loop's view of torch: its 'cuda' device is the CPU; no CUDA events or counters."""
        cuda = types.SimpleNamespace(Event=lambda **k: None, current_stream=lambda *a: None,
                                     max_memory_allocated=lambda *a: 0, max_memory_reserved=lambda *a: 0,
                                     reset_peak_memory_stats=lambda *a: None)

        def __getattr__(self, name):
            return getattr(torch, name)

        @staticmethod
        def device(kind, index=None):
            return torch.device("cpu")

    training_loop.torch = CpuTorch()
    grid = training_loop.setup_snapshot_image_grid
    training_loop.setup_snapshot_image_grid = lambda training_set, random_seed=0: _small_grid(
        grid(training_set=training_set, random_seed=random_seed))

    # The setup our --cfg resolved, from the parent: importing stylegan here would bring our
    # torch_utils, which NVIDIA's code would then import in place of its own.
    s = types.SimpleNamespace(**json.loads(Path(args.setup).read_text()))
    ada = s.arch == "stylegan2"
    drop = ("c_dim", "img_resolution", "img_channels")
    G = {k: v for k, v in s.G_kwargs.items() if k not in drop}
    D = {k: v for k, v in s.D_kwargs.items() if k not in drop}
    G["class_name"] = "training.networks.Generator" if ada else "training.networks_stylegan3.Generator"
    D["class_name"] = "training.networks.Discriminator" if ada else "training.networks_stylegan2.Discriminator"
    adam = lambda opt: dict(class_name="torch.optim.Adam", lr=opt["lr"], betas=[float(b) for b in opt["betas"]],
                            eps=opt["eps"])
    run_dir = Path(args.outdir) / "nvidia"
    run_dir.mkdir(parents=True)
    training_loop.training_loop(
        run_dir=str(run_dir), training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path=args.data,
                                                       use_labels=False, max_size=s.data["max_size"], xflip=False,
                                                       resolution=s.data["resolution"]),
        data_loader_kwargs=dict(pin_memory=False, num_workers=0), G_kwargs=G, D_kwargs=D, G_opt_kwargs=adam(s.G_opt),
        D_opt_kwargs=adam(s.D_opt), augment_kwargs=dict(class_name="training.augment.AugmentPipe", **s.augment_kwargs),
        loss_kwargs=dict(class_name="training.loss.StyleGAN2Loss", **s.loss_kwargs), metrics=[],
        random_seed=s.random_seed, batch_size=s.batch_size, batch_gpu=s.batch_gpu, ema_kimg=s.ema_kimg,
        ema_rampup=s.ema_rampup, G_reg_interval=s.G_reg_interval, D_reg_interval=s.D_reg_interval,
        augment_p=s.augment_p, ada_target=s.ada_target, ada_interval=s.ada_interval, ada_kimg=s.ada_kimg,
        total_kimg=s.total_kimg, kimg_per_tick=s.kimg_per_tick, image_snapshot_ticks=None,
        network_snapshot_ticks=None)
    return run_dir / "stats.jsonl"


def _small_grid(found):
    (gw, gh), images, labels = found
    w, h = min(gw, 8), min(gh, 4)
    keep = [y * gw + x for y in range(h) for x in range(w)]
    return (w, h), images[keep], labels[keep]


def child(args) -> None:
    import torch
    torch.set_num_threads(args.threads)
    stats = run_ours(args) if args.child == "ours" else run_nvidia(args)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"sec_per_kimg": sec_per_kimg(stats), "peak_mb": peak_mb}))


# ----------------------------------------------------------------------------------------------


def spawn(side: str, config: str, args, data: Path, tmp: Path) -> dict:
    out = Path(tempfile.mkdtemp(dir=tmp))
    cmd = [sys.executable, __file__, "--child", side, "--config", config, "--data", str(data), "--outdir", str(out),
           "--kimg", str(args.kimg), "--tick", str(args.tick), "--threads", str(args.threads)]
    if side == "nvidia":
        from stylegan.training.config import resolve
        from stylegan.training.loop import open_data
        setup = resolve(options(config, str(data), str(out), args.kimg, args.tick), open_data(data), "cpu")
        (out / "setup.json").write_text(json.dumps(setup.to_json()))
        cmd += ["--nvidia", args.nvidia_ada if config == "sg2" else args.nvidia_sg3, "--setup", str(out / "setup.json")]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    if r.returncode != 0 or not line:
        raise SystemExit(f"{side} {config} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.loads(line[-1][7:])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nvidia-ada", help="unpacked NVlabs/stylegan2-ada-pytorch (for sg2)")
    p.add_argument("--nvidia-sg3", help="unpacked NVlabs/stylegan3 (for sg3t)")
    p.add_argument("--configs", default="sg2,sg3t")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--kimg", type=float, default=0.096)
    p.add_argument("--tick", type=float, default=0.016)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", choices=["ours", "nvidia"], help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--outdir", help=argparse.SUPPRESS)
    p.add_argument("--nvidia", help=argparse.SUPPRESS)
    p.add_argument("--setup", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_data(tmp / "blobs.zip")
        print(f"CPU, {args.threads} threads, {args.kimg} kimg per run, ticks of {args.tick} kimg; "
              f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'config':8s} {'run':>3s}  {'NVIDIA s/kimg':>13s} {'ours s/kimg':>11s} {'speed-up':>8s}  "
              f"{'NVIDIA MB':>9s} {'ours MB':>8s} {'memory':>7s}")
        for config in args.configs.split(","):
            nvidia = args.nvidia_ada if config == "sg2" else args.nvidia_sg3
            for i in range(args.repeats):
                ours = spawn("ours", config, args, data, tmp)
                theirs = spawn("nvidia", config, args, data, tmp) if nvidia else None
                if theirs is None:
                    print(f"{config:8s} {i:3d}  {'-':>13s} {ours['sec_per_kimg']:11.1f} {'-':>8s}  "
                          f"{'-':>9s} {ours['peak_mb']:8.0f}")
                    continue
                print(f"{config:8s} {i:3d}  {theirs['sec_per_kimg']:13.1f} {ours['sec_per_kimg']:11.1f} "
                      f"{theirs['sec_per_kimg'] / ours['sec_per_kimg']:7.2f}x  {theirs['peak_mb']:9.0f} "
                      f"{ours['peak_mb']:8.0f} {ours['peak_mb'] / theirs['peak_mb']:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
