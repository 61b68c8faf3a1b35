"""The invisible watermark, measured: what it survives, what it costs in PSNR and in `generate`'s
throughput. Everything side by side in one run; throughput runs alternate (on, off, on, off, ...)
so a busy machine's load falls on both alike.

    python benchmarks/watermark.py [--sizes 256,512,1024] [--throughput stylegan2-256,stylegan2-1024]
                                   [--images 16] [--repeats 3] [--strengths 24,36,48]

Robustness: per image and size, the bit accuracy of the 64-bit payload read with the grid where it
was put (no search), and whether `watermark.read` finds the mark (with its search for crops and
resizes: a found mark has all 32 CRC bits right). Images: two real photos (scikit-image's astronaut,
matplotlib's Grace Hopper) and random-weight network output, resized to each size with Lanczos.
When the `invisible-watermark` package is importable its dwtDctSvd is measured beside ours.
"""
from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

import stylegan
from stylegan.provenance import Provenance
from stylegan.provenance import watermark as wm

ATTACKS = ["png", "jpeg90", "jpeg75", "jpeg50", "resize75", "resize50", "crop5", "crop10"]


def attack(img: np.ndarray, name: str) -> np.ndarray:
    h, w = img.shape[:2]
    buf = io.BytesIO()
    if name == "png":
        Image.fromarray(img).save(buf, "png")
    elif name.startswith("jpeg"):
        Image.fromarray(img).save(buf, "jpeg", quality=int(name[4:]))
    elif name.startswith("resize"):
        f = int(name[6:]) / 100
        return np.asarray(Image.fromarray(img).resize((round(w * f), round(h * f)), Image.Resampling.BICUBIC))
    elif name.startswith("crop"):      # the given share of the side, half from each edge
        dy, dx = round(h * int(name[4:]) / 200), round(w * int(name[4:]) / 200)
        return img[dy:h - dy, dx:w - dx]
    return np.asarray(Image.open(buf).convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_images(size: int) -> dict[str, np.ndarray]:
    import matplotlib.cbook
    from skimage import data
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        grace = im.convert("RGB")
    photos = {"astronaut": Image.fromarray(data.astronaut()), "grace_hopper": grace}
    out = {k: np.asarray(v.resize((size, size), Image.Resampling.LANCZOS)) for k, v in photos.items()}
    torch.manual_seed(0)
    G = stylegan.create_model("stylegan2", z_dim=64, w_dim=64, c_dim=0, img_resolution=size, img_channels=3,
                              mapping_kwargs={"num_layers": 2},
                              synthesis_kwargs={"channel_base": 1024, "channel_max": 32}).eval()
    img = stylegan.generate(G, [0])[0]
    out["random_net"] = img
    return out


def robustness(sizes: list[int], strengths: list[float]) -> None:
    bits = wm.payload_bits("synthetic", "0123456789abcdef")
    print("\n## Robustness: bit accuracy without search / mark found with search (Y/-), per attack")
    print("| size | image | strength | embed ms | PSNR dB | " + " | ".join(ATTACKS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(ATTACKS))
    for size in sizes:
        images = test_images(size)
        for name, img in images.items():
            for strength in strengths:
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    marked = wm.embed(img, bits, strength)
                    times.append(time.perf_counter() - t)
                cells = []
                for a in ATTACKS:
                    attacked = attack(marked, a)
                    acc = float((wm.read_bits(attacked, strength) == bits).mean()) if wm.readable(attacked) else None
                    found = wm.read(attacked) is not None if strength == wm.STRENGTH else None
                    cells.append(("n/a" if acc is None else f"{acc:.2f}") + {True: " Y", False: " -", None: ""}[found])
                sat = float(((img == 0) | (img == 255)).mean())
                label = name + (f" ({sat:.0%} clipped)" if sat > 0.05 else "")
                print(f"| {size} | {label} | {strength:g} | {1e3 * min(times):.0f} | {psnr(marked, img):.1f} | "
                      + " | ".join(cells) + " |", flush=True)
        # False positives: the unmarked images, every alignment searched.
        false = [name for name, img in images.items() if wm.read(attack(img, "jpeg75")) is not None]
        print(f"| {size} | unmarked images (JPEG 75), full search | | | | false marks found: {len(false)} |")


def library_comparison(size: int) -> None:
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError:
        print("\n(invisible-watermark not importable: its row is left out)")
        return
    img = test_images(size)["astronaut"]
    payload = np.packbits(wm.payload_bits("synthetic", "0123456789abcdef")).tobytes()
    enc = WatermarkEncoder()
    enc.set_watermark("bytes", payload)
    bgr = np.ascontiguousarray(img[..., ::-1])
    t = time.perf_counter()
    marked = np.ascontiguousarray(enc.encode(bgr, "dwtDctSvd")[..., ::-1])
    t_lib = time.perf_counter() - t
    t = time.perf_counter()
    ours = wm.embed(img, wm.payload_bits("synthetic", "0123456789abcdef"))
    t_ours = time.perf_counter() - t
    dec = WatermarkDecoder("bytes", 64)
    acc = {}
    for a in ("png", "jpeg75", "jpeg50"):
        got = np.unpackbits(np.frombuffer(dec.decode(np.ascontiguousarray(attack(marked, a)[..., ::-1]),
                                                     "dwtDctSvd"), np.uint8))
        acc[a] = float((got == np.unpackbits(np.frombuffer(payload, np.uint8))).mean())
    print(f"\n## invisible-watermark dwtDctSvd vs ours, astronaut at {size} px (same machine, same run)")
    print(f"| | embed ms | PSNR dB | png | jpeg75 | jpeg50 |\n|---|---|---|---|---|---|")
    print(f"| invisible-watermark 0.2.0 | {1e3 * t_lib:.0f} | {psnr(marked, img):.1f} | "
          + " | ".join(f"{v:.2f}" for v in acc.values()) + " |")
    ours_acc = [float((wm.read_bits(attack(ours, a)) == wm.payload_bits('synthetic', '0123456789abcdef')).mean())
                for a in ("png", "jpeg75", "jpeg50")]
    print(f"| ours | {1e3 * t_ours:.0f} | {psnr(ours, img):.1f} | " + " | ".join(f"{v:.2f}" for v in ours_acc) + " |")


def throughput(configs: list[str], images: int, repeats: int, batch: int, device: str) -> None:
    """img/s of write_image_set with the watermark on and off, runs alternating. Also the process's
    CPU seconds per image (all its threads): on a machine others are loading, wall time swings with
    their load, while the CPU time this process spends says what the watermark costs."""
    print(f"\n## generate throughput, watermark on vs off ({images} images a run, batch {batch}, {device}, "
          f"runs alternating, {repeats} each; medians)")
    print("| config | off img/s | on img/s | on / off | off CPU s/img | on CPU s/img | on / off |")
    print("|---|---|---|---|---|---|---|")
    for config in configs:
        torch.manual_seed(0)
        G = stylegan.create_model(config).eval().to(device)
        seeds = list(range(images))
        rates, cpu = {True: [], False: []}, {True: [], False: []}
        with tempfile.TemporaryDirectory() as root:
            stylegan.pipelines.write_image_set(G, seeds[:batch], f"{root}/warm", batch_size=batch)  # kernels, caches
            for k in range(repeats):
                for on in (True, False) if k % 2 == 0 else (False, True):
                    outdir = f"{root}/{k}-{on}"
                    start, start_cpu = time.perf_counter(), time.process_time()
                    stylegan.pipelines.write_image_set(G, seeds, outdir, batch_size=batch,
                                                       provenance=Provenance(watermark=on))
                    rates[on].append(images / (time.perf_counter() - start))
                    cpu[on].append((time.process_time() - start_cpu) / images)
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        c_off, c_on = statistics.median(cpu[False]), statistics.median(cpu[True])
        print(f"| {config} | {off:.2f} | {on:.2f} | {on / off:.3f} | {c_off:.3f} | {c_on:.3f} | {c_on / c_off:.3f} |",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="256,512,1024", help="robustness at these sizes ('' to skip)")
    ap.add_argument("--strengths", default="36", help="lattice steps to compare (the reading search runs at the default)")
    ap.add_argument("--throughput", default="stylegan2-256,stylegan2-1024", help="configs ('' to skip)")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    if args.sizes:
        robustness([int(s) for s in args.sizes.split(",")], [float(s) for s in args.strengths.split(",")])
        library_comparison(max(int(s) for s in args.sizes.split(",")))
    if args.throughput:
        throughput(args.throughput.split(","), args.images, args.repeats, args.batch, args.device)


if __name__ == "__main__":
    main()
