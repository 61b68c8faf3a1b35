"""Agreement with NVIDIA's metric code: every metric of the reference fixtures (reference
metrics/README.md) computed here with the fixture's networks, stand-in feature networks, data set,
counts and seeds, printed beside NVIDIA's value with the difference. No asserts: the tests pin the
tolerances, this prints the numbers the README's table quotes.

The fixture's calls use other counts than the registry's (200 samples, KID 10 subsets of 100, EQ 64
samples), so they run as one's own `Metric`s over `measures` (registry.py), through `compute()` like any
named metric, each call seeded as the fixture seeded NVIDIA's.

    python benchmarks/metrics_parity.py                      # ../shared/reference, or $STYLEGAN_REFERENCE_DIR
    python benchmarks/metrics_parity.py --reference DIR --skip-eq

Takes 3 minutes of CPU time (5.5 minutes' wall time on 2 cores shared with other work)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylegan  # noqa: E402
from stylegan.metrics import Metric, compute, measures  # noqa: E402

N = 200     # real images, generated images and PPL samples of the fixture
EQ_N = 64   # EQ samples of the fixture


def _metric(name: str, run, generated=(), detectors=(), real=False) -> Metric:
    return Metric(name, f"{name} as the reference fixture called NVIDIA's", run, num_gen=N, real=real,
                  generated=generated, detectors=detectors)


def _pr(o, n):
    precision, recall = measures.compute_pr(o, N, n, nhood_size=3, row_batch_size=64, col_batch_size=64)
    return {"pr_precision": precision, "pr_recall": recall}


def _is(o, n):
    mean, std = measures.compute_is(o, n, num_splits=10)
    return {"is_mean": mean, "is_std": std}


def _eq(o, n):
    t, frac, r = measures.compute_equivariance(o, EQ_N, batch_size=4, eqt_int=True, eqt_frac=True, eqr=True)
    return {"eqt_int": t, "eqt_frac": frac, "eqr": r}


INCEPTION, VGG = ("inception",), ("vgg16",)
# (seed, network, data?, metrics) per call, as the fixture's table "Calls and arguments" lists them.
CALLS = [
    (0, "sg2ada_skip", True, [
        _metric("fid", lambda o, n: {"fid": measures.compute_fid(o, N, n)}, (measures.INCEPTION_FEATURES,),
                INCEPTION, real=True),
        _metric("kid", lambda o, n: {"kid": measures.compute_kid(o, N, n, 10, 100)}, (measures.INCEPTION_ALL,),
                INCEPTION, real=True),
        _metric("pr", _pr, (measures.VGG16_ALL,), VGG, real=True)]),
    (1, "sg2ada_skip", True, [_metric("is", _is, (measures.INCEPTION_PROBS,), INCEPTION)]),
    (2, "sg2ada_skip", True, [_metric("ppl_wend", lambda o, n: {
        "ppl_wend": measures.compute_ppl(o, n, 1e-4, "w", "end", False, 2)}, detectors=VGG)]),
    (3, "sg2ada_skip", True, [_metric("ppl_zfull", lambda o, n: {
        "ppl_zfull": measures.compute_ppl(o, n, 1e-4, "z", "full", True, 2)}, detectors=VGG)]),
    (4, "sg3_t", False, [_metric("eq", _eq)]),
] + [(4, "sg3_t", False, [name]) for name in ("eqt50k_int", "eqt50k_frac", "eqr50k")]
ALONE = {"eqt50k_int": "eqt_int_alone", "eqt50k_frac": "eqt_frac_alone", "eqr50k": "eqr_alone"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.environ.get("STYLEGAN_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "reference")
    parser.add_argument("--reference", type=Path, default=Path(default), help="the reference fixtures' folder")
    parser.add_argument("--skip-eq", action="store_true", help="leave out the StyleGAN3 equivariance metrics")
    args = parser.parse_args()
    ref = args.reference
    nvidia = json.loads((ref / "metrics/metrics_dev.json").read_text())["values"]
    standins = dict(inception=str(ref / "metrics/inception_standin.pt"), vgg16=str(ref / "metrics/vgg16_standin.pt"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; reference {ref}")
    networks = {}
    rows = []
    for seed, network, with_data, metrics in CALLS:
        if args.skip_eq and network == "sg3_t":
            continue
        if network not in networks:
            networks[network] = stylegan.load(ref / f"{network}.pkl").generator.eval()
        start = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")         # notes on the small data set: this is the fixture's
            results = compute(networks[network], ref / "metrics/dataset_dev.zip" if with_data else None, metrics,
                              device="cpu", detectors=standins, seed=seed, num_gen=EQ_N if network == "sg3_t" else None,
                              cache=False, num_workers=0)
        for r in results:
            for key, value in r.results.items():
                rows.append((ALONE.get(key, key), nvidia[ALONE.get(key, key)], value))
        print(f"  seed {seed} {network}: {', '.join(r.name for r in results)} in {time.time() - start:.1f} s")
    print(f"\n{'metric':<16s} {'NVIDIA':>20s} {'ours':>20s} {'abs diff':>13s} {'rel diff':>10s}")
    for key, theirs, ours in rows:
        unit = " dB" if key.startswith("eq") else "   "
        print(f"{key:<16s} {theirs:20.10g} {ours:20.10g} {abs(ours - theirs):10.2g}{unit} "
              f"{abs(ours - theirs) / abs(theirs):10.2g}")


if __name__ == "__main__":
    main()
