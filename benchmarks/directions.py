"""Time to find editing directions with each method, per config (random-init networks; no asserts),
and how well InterFaceGAN's estimators recover a planted direction.

    python benchmarks/directions.py                                  # stylegan2-1024, stylegan3-t-1024
    python benchmarks/directions.py --config stylegan2-256 --render-samples 16 --stylespace
    python benchmarks/directions.py --recovery                       # InterFaceGAN estimators, |cos| and s
    python benchmarks/directions.py --recovery --recovery-w sg2ada_skip stylegan2-1024 --noise 0.05 0.5

SeFa, GANSpace and InterFaceGAN from scores held in a dict (as read from a CSV) only map latents;
InterFaceGAN with an image scorer (--render-samples N; a stand-in scorer, so the time is the
rendering's) and StyleSpace (--stylespace: 8 probes, each a forward and a backward pass) render
images, which is what dominates them at 1024 px on a CPU.

--recovery plants a direction d (random, unit) in the W of a mapping network, scores N of its
latents w.d plus noise (a share of the score's std), and prints |cos| between d and what each
estimator finds (mean and minimum over --trials directions) and its fit time. W is a real mapping
network's: a fixture pickle's (64-d) or a full-size config's (512-d; random-init, with the same
spread of covariance eigenvalues, ~9 to ~0.002, as a trained one's). Estimators: the library's
'ridge' (the default: ridge regression on every sample, GCV penalty) and 'svm' (the paper's, top and
bottom 2 %; also at 10 % and 50 %), and candidates kept here for the record: least squares on every
sample, the SVM on whitened W, and whitened class means (LDA) of the top and bottom 2 % / 50 %. W's
covariance for whitening comes from 100 000 unscored latents (free: only the mapping runs)."""
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
from stylegan.editing.interfacegan import boundary, linear_svm, split_by_score  # noqa: E402


def timed(label: str, fn) -> None:
    start = time.perf_counter()
    fn()
    print(f"  {label:48s} {time.perf_counter() - start:8.1f} s", flush=True)


def mapping_network(name: str) -> torch.nn.Module:
    """A fixture pickle's generator by its name (sg2ada_skip, ...), else a config with random weights
    (the same every run)."""
    ref = Path(__file__).resolve().parents[2] / "shared" / "reference" / f"{name}.pkl"
    return stylegan.load(ref if ref.is_file() else name, untrained=True).generator


def sample_w(G: torch.nn.Module, n: int, seed: int) -> np.ndarray:
    z = torch.from_numpy(np.random.RandomState(seed).randn(n, G.z_dim))
    with torch.no_grad():
        return torch.cat([G.mapping(b, None)[:, 0] for b in z.split(10_000)]).double().numpy()


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def least_squares(w, s):
    return _unit(np.linalg.lstsq(w - w.mean(0), s - s.mean(), rcond=None)[0])


def whitened_svm(w, s, ratio, white):
    top, bottom = split_by_score(s, ratio)
    x = np.concatenate([w[top], w[bottom]]) @ white
    y = np.r_[np.ones(len(top)), -np.ones(len(bottom))]
    return _unit(white @ linear_svm(x, y)[0])     # a normal in whitened coordinates, back in W's


def whitened_means(w, s, ratio, cov):
    top, bottom = split_by_score(s, ratio)
    return _unit(np.linalg.solve(cov, w[top].mean(0) - w[bottom].mean(0)))


def recovery(names, counts, noises, trials, slow_svm_max):
    print(f"{'W':16s} {'noise':>5s} {'N':>5s}  {'estimator':34s} {'|cos| mean':>10s} {'min':>6s} {'fit s':>7s}")
    for name in names:
        G = mapping_network(name)
        unscored = sample_w(G, 100_000, 12345)
        cov = np.cov(unscored.T)
        e, v = np.linalg.eigh(cov)
        white = v / np.sqrt(e)
        print(f"{name}: W {G.w_dim}-d, covariance eigenvalues {e.max():.3g} .. {e.min():.2g}", flush=True)
        estimators = {
            "ridge, all samples (default)": lambda w, s: boundary(w, s),
            "svm, top/bottom 2% (paper)": lambda w, s: boundary(w, s, method="svm", ratio=0.02),
            "svm, top/bottom 10%": lambda w, s: boundary(w, s, method="svm", ratio=0.1),
            "svm, top/bottom 50%": lambda w, s: boundary(w, s, method="svm", ratio=0.5),
            "least squares, all samples": least_squares,
            "svm on whitened W, 2%": lambda w, s: whitened_svm(w, s, 0.02, white),
            "whitened class means, 2%": lambda w, s: whitened_means(w, s, 0.02, cov),
            "whitened class means, 50%": lambda w, s: whitened_means(w, s, 0.5, cov),
        }
        for noise in noises:
            for n in counts:
                rows = {}
                for trial in range(trials):
                    rng = np.random.default_rng(trial)
                    d = _unit(rng.standard_normal(G.w_dim))
                    w = sample_w(G, n, 100 + trial)
                    p = w @ d
                    s = p + noise * p.std() * rng.standard_normal(n)
                    for label, fit in estimators.items():
                        if label.startswith("svm, top/bottom") and "2%" not in label and n > slow_svm_max:
                            continue
                        start = time.perf_counter()
                        found = fit(w, s)
                        rows.setdefault(label, []).append((abs(found @ d), time.perf_counter() - start))
                for label, r in rows.items():
                    r = np.array(r)
                    print(f"{name:16s} {noise:5.2f} {n:5d}  {label:34s} {r[:, 0].mean():10.3f} {r[:, 0].min():6.3f} "
                          f"{r[:, 1].mean():7.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", default=["stylegan2-1024", "stylegan3-t-1024"])
    ap.add_argument("--ganspace-samples", type=int, default=100_000)
    ap.add_argument("--csv-samples", type=int, default=10_000, help="seeds scored in the dict (CSV) case")
    ap.add_argument("--render-samples", type=int, default=0, help="InterFaceGAN with an image scorer: images")
    ap.add_argument("--stylespace", action="store_true", help="also StyleSpace channels of one latent")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recovery", action="store_true", help="only InterFaceGAN's planted-direction table")
    ap.add_argument("--recovery-w", nargs="+", default=["sg2ada_skip", "stylegan2-1024"],
                    help="whose W: fixture pickle names or configs")
    ap.add_argument("--samples", type=int, nargs="+", default=[1000, 2000, 4000, 6000])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.5], help="noise std / score std")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--slow-svm-max", type=int, default=6000,
                    help="the SVM at 10 %% and 50 %% only up to this many samples (it is the slow one)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.recovery:
        recovery(a.recovery_w, a.samples, a.noise, a.trials, a.slow_svm_max)
        return
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
