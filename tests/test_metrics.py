"""`stylegan.metrics.compute` and `stylegan metrics` against NVIDIA's metric code run on the fixture networks
with the stand-in detectors (reference metrics/README.md), and one line for each bad input."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import stylegan
from conftest import fixture_model, make_zip, reference_path
from stylegan.metrics import compute, data_statistics, measures, read_statistics, scores, write_statistics
from stylegan.metrics.features import MetricOptions
from stylegan.metrics.ppl import ppl_distances
from stylegan.metrics.runner import Detectors


@pytest.fixture(scope="module")
def ref():
    with np.load(reference_path("metrics/metrics_dev.npz")) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(reference_path("metrics/metrics_dev.json").read_text())["values"]


@pytest.fixture(scope="module")
def G():
    return fixture_model().generator.eval()


@pytest.fixture(scope="module")
def standins():
    return dict(inception=str(reference_path("metrics/inception_standin.pt")),
                vgg16=str(reference_path("metrics/vgg16_standin.pt")))


@pytest.fixture(scope="module")
def small_zip(tmp_path_factory):
    """8 images of the fixture data set, 32 px: enough for the plumbing, cheap to measure."""
    from stylegan.data import ImageDataset
    ds = ImageDataset(reference_path("metrics/dataset_dev.zip"))
    return make_zip(tmp_path_factory.mktemp("data") / "small.zip", [ds[i][0] for i in range(8)])


class Events:
    def __init__(self):
        self.items = []

    def __call__(self, p):
        self.items.append((p.stage, p.done, p.total))

    def stages(self, what):
        """The metrics that ran the pass `what` ('real images', 'generated images')."""
        return sorted({s[:-len(what) - 1] for s, _, _ in self.items if s.endswith(" " + what)})


@pytest.fixture(scope="module")
def fid_kid_pr(G, standins, tmp_path_factory):
    events = Events()
    cache = tmp_path_factory.mktemp("cache")
    results = compute(G, reference_path("metrics/dataset_dev.zip"), "fid50k_full,kid50k_full,pr50k3_full",
                      device="cpu", detectors=standins, num_gen=200, seed=0, cache_dir=cache, progress=events)
    return {k: v for r in results for k, v in r.results.items()}, events, cache, results


def test_fid_kid_pr_match_nvidia(fid_kid_pr, ref):
    values, events, _, _ = fid_kid_pr
    arrays, nvidia = ref
    # NVIDIA's calls: seed 0, all 200 real images, 200 generated (reference README, "Calls and arguments").
    assert values["fid50k_full"] == pytest.approx(nvidia["fid"], rel=1e-4)
    assert values["pr50k3_full_precision"] == pytest.approx(nvidia["pr_precision"], abs=1 / 200 + 1e-9)
    assert values["pr50k3_full_recall"] == pytest.approx(nvidia["pr_recall"], abs=1 / 200 + 1e-9)
    # kid50k_full's own arguments (100 subsets of 200) on NVIDIA's features and numpy stream.
    rng = _after_randints(0, 256)
    want = scores.kernel_inception_distance(arrays["inception_gen_features"], arrays["inception_real_features"],
                                            100, 1000, rng)
    assert values["kid50k_full"] == pytest.approx(want, rel=1e-4)
    # The three share one seed, hence one set of generated images: generated once.
    assert events.stages("generated images") == ["fid50k_full"]
    assert events.items[-1][1:] == (200, 200)


def test_statistics_cache_makes_the_second_run_generate_only(fid_kid_pr, G, standins, small_zip, tmp_path):
    _, _, cache, _ = fid_kid_pr
    assert len(list(cache.glob("metrics/dataset_dev-*.npz"))) == 3      # inception mean/cov and all, vgg16 all
    runs = []
    for _ in range(2):
        events = Events()
        runs.append(compute(G, small_zip, ["fid50k_full"], device="cpu", detectors=standins, num_gen=8, batch_size=8,
                            num_workers=0, cache_dir=tmp_path, progress=events)[0].results)
        runs.append(events)
    assert runs[1].stages("real images") == ["fid50k_full"] and runs[3].stages("real images") == []
    assert runs[3].stages("generated images") == ["fid50k_full"] and runs[2] == runs[0]


def test_result_lines_are_nvidias_jsonl(fid_kid_pr, tmp_path):
    *_, results = fid_kid_pr
    line = json.loads(results[2].jsonl(snapshot="network-snapshot-000200.pkl"))
    assert list(line) == ["results", "metric", "total_time", "total_time_str", "num_gpus", "snapshot_pkl", "timestamp"]
    assert line["metric"] == "pr50k3_full" and set(line["results"]) == {"pr50k3_full_precision", "pr50k3_full_recall"}
    path = results[0].append_to(tmp_path)
    results[0].append_to(tmp_path)
    assert path.name == "metric-fid50k_full.jsonl" and len(path.read_text().splitlines()) == 2


OWN_METRICS = """
from stylegan.metrics import Metric, measures


def _kid(opts, num_gen):
    return {"kid_dev": measures.compute_kid(opts, None, num_gen, num_subsets=10, max_subset_size=100)}


kid_dev = Metric("kid_dev", "KID as the reference fixture calls it: all real images, 10 subsets of 100", _kid,
                 num_gen=200, real=True, generated=(measures.INCEPTION_ALL,), detectors=("inception",))
not_a_metric = 3
"""


def test_own_metric_by_import_path_matches_nvidia(fid_kid_pr, G, standins, ref, tmp_path, monkeypatch):
    """A user's metric with other arguments than the registry's (NVIDIA's compute_kid as the fixture called
    it), named by its import path: NVIDIA's KID of seed 0, also when FID generated the images it shares
    (its subsets are drawn from the numpy stream after the label draws of that pass). Registered, it goes
    by its name."""
    from stylegan.metrics import registry
    (tmp_path / "my_metrics.py").write_text(OWN_METRICS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "METRICS", dict(registry.METRICS))
    _, _, cache, _ = fid_kid_pr
    fid, result = compute(G, reference_path("metrics/dataset_dev.zip"), "fid50k_full,my_metrics:kid_dev",
                          device="cpu", detectors=standins, seed=0, num_gen=200, cache_dir=cache)
    assert result.name == "kid_dev" and list(result.results) == ["kid_dev"]
    assert result.results["kid_dev"] == pytest.approx(ref[1]["kid"], rel=1e-5)
    assert fid.results["fid50k_full"] == pytest.approx(ref[1]["fid"], rel=1e-4)
    import my_metrics
    assert registry.parse("my_metrics:kid_dev, fid50k_full") == [my_metrics.kid_dev, registry.METRICS["fid50k_full"]]
    assert stylegan.metrics.register(my_metrics.kid_dev) is registry.lookup("kid_dev") is my_metrics.kid_dev
    for spec, match in [("no_such_module_here:m", "cannot import 'no_such_module_here'"),
                        ("my_metrics:missing", "module 'my_metrics' has no 'missing'"),
                        ("my_metrics:not_a_metric", "a int, not a stylegan.metrics.Metric")]:
        with pytest.raises(ValueError, match=match):
            registry.parse(spec)
    with pytest.raises(ValueError, match="'fid50k_full' is already taken by fid50k_full"):
        registry.register(registry.Metric("fid50k_full", "mine", my_metrics._kid))


def test_inception_score_stream_matches_nvidia(G, standins, ref):
    """IS reads no real images, so its stream has no loader seed before the first z: the first detector
    batch of seed 1 is NVIDIA's first batch of IS images (the formula itself: test_metrics_scores.py)."""
    arrays, _ = ref
    from stylegan.metrics.features import generated_images
    from stylegan.data import ImageDataset
    with torch.random.fork_rng():
        opts = _seeded_opts(G, standins, 1)
        opts.dataset = ImageDataset(reference_path("metrics/dataset_dev.zip"))
        with torch.no_grad():
            images = next(generated_images(opts))
    diff = (images.int() - torch.from_numpy(arrays["is_gen_images_uint8"][:64]).int()).abs()
    assert diff.max() <= 1 and (diff > 0).sum() <= 10      # float32 differences: a few pixels one level off
    assert opts.rng.randint(1 << 30) == _after_randints(1, 64).randint(1 << 30)   # one label draw per image


def _after_randints(seed: int, n: int) -> np.random.RandomState:
    rng = np.random.RandomState(seed)
    for _ in range(n):
        rng.randint(200)
    return rng


def _seeded_opts(G, standins, seed):
    torch.manual_seed(seed)
    return MetricOptions(G=G, detectors=Detectors(standins, torch.device("cpu"), False, None, 0, 1),
                         rng=np.random.RandomState(seed))


@pytest.mark.parametrize("key, seed, args", [("ppl_wend", 2, ("w", "end", False)),
                                             ("ppl_zfull", 3, ("z", "full", True))])
def test_ppl_samples_match_nvidia(G, standins, ref, key, seed, args):
    arrays, _ = ref
    with torch.random.fork_rng():
        dist = ppl_distances(_seeded_opts(G, standins, seed), 10, 1e-4, *args, batch_size=2)
    # eps^2 = 1e-8 amplifies float32 differences of two nearly equal images: NVIDIA's own code moves
    # single samples by up to 1 % with other float32 arithmetic (reference README, Tolerances).
    rel = np.abs(dist / arrays[f"{key}_dist"][:10] - 1)
    assert rel.max() < 0.02 and np.median(rel) < 0.005


def test_equivariance_sampling_matches_nvidia(ref):
    arrays, _ = ref
    G3 = stylegan.load(reference_path("sg3_t.pkl")).generator.eval()
    seen = []
    G3.synthesis.register_forward_hook(lambda m, i, out: seen.append((out.clone(), m.input.transform.clone())))
    with torch.random.fork_rng():
        torch.manual_seed(4)
        opts = MetricOptions(G=G3, rng=np.random.RandomState(4))
        measures.compute_equivariance(opts, 4, 4, eqt_int=True, eqt_frac=True, eqr=True)
    assert len(seen) == 4                                   # one batch: orig, EQ-T, EQ-T_frac, EQ-R
    for call, (out, transform) in enumerate(seen):
        np.testing.assert_allclose(transform.numpy(), arrays["eq_transforms"][call], atol=1e-7)
        np.testing.assert_allclose(out.numpy(), arrays["eq_synthesis_out"][call], atol=1e-5)


# --- the plumbing on a small data set ------------------------------------------------------------------

def _quick(G, data, names, standins, **kw):
    kw = {**dict(device="cpu", detectors=standins, num_gen=8, batch_size=8, cache=False, num_workers=0), **kw}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = compute(G, data, names, **kw)
    return results, [str(w.message) for w in caught if w.category.__name__ == "MetricNotice"]


def test_small_data_set_is_used_whole_and_said_once(G, standins, small_zip):
    results, notes = _quick(G, small_zip, "fid50k_full,kid50k_full", standins, num_gen=16, batch_size=16)
    assert notes == ["the data set has 8 images, fewer than the 16 fid50k_full is defined with: using all 8 "
                     "(with few real images the value is biased and not comparable to published ones)",
                     notes[1]] and "kid50k_full" in notes[1]
    assert all(np.isfinite(v) for r in results for v in r.results.values())


def test_statistics_file_gives_the_same_fid(G, standins, small_zip, tmp_path):
    mu, sigma = data_statistics(small_zip, resolution=32, detector=standins["inception"], cache=False, num_workers=0)
    write_statistics(tmp_path / "stats.npz", mu, sigma)
    direct, _ = _quick(G, small_zip, "fid50k_full", standins)
    from_file, notes = _quick(G, tmp_path / "stats.npz", "fid50k_full", standins)
    assert from_file[0].results == direct[0].results
    assert "precomputed statistics" in notes[0]


def test_other_resolution_is_resized_and_said_once(G, standins, tmp_path):
    from stylegan.data import ImageDataset
    from stylegan.metrics.features import ResizedDataset
    ds = ImageDataset(reference_path("metrics/dataset_dev.zip"))
    originals = [ds[i][0] for i in range(8)]
    big = make_zip(tmp_path / "big.zip", [np.kron(a, np.ones([2, 2, 1], np.uint8)) for a in originals])
    results, notes = _quick(G, big, "fid50k_full,pr50k3_full", standins)
    resized = [n for n in notes if "resizing" in n]
    assert len(resized) == 1 and "64x64, the generator's 32x32" in resized[0]
    assert all(np.isfinite(v) for r in results for v in r.results.values())
    # Lanczos 2x down of pixel-doubled images gives back the originals, up to its ringing at edges.
    down = ResizedDataset(ImageDataset(big), 32)
    for i in (0, 3):
        diff = np.abs(down[i][0].astype(int) - originals[i].astype(int))
        assert down[i][0].shape == (32, 32, 3) and np.median(diff) <= 1 and diff.mean() < 3


@pytest.mark.parametrize("case, match", [
    ("metric", "unknown metric 'fid50k_ful'; did you mean fid50k_full"),
    ("stats-shape", r"statistics of shape mu \[3\], sigma \[3, 3\]; the Inception features need mu \[2048\]"),
    ("stats-nan", "statistics hold NaN or infinity"),
    ("stats-kid", "kid50k_full needs the data set's images"),
    ("detector", "the fixture's inception stand-in .*, not the VGG16"),
    ("eq-sg2", "eqt50k_int: needs a StyleGAN3 generator"),
    ("no-data", "fid50k_full needs a data set"),
])
def test_bad_inputs_are_one_line(G, standins, small_zip, tmp_path, case, match):
    data, names, dets = small_zip, "fid50k_full", dict(standins)
    if case == "metric":
        names = "fid50k_ful"
    elif case.startswith("stats"):
        data = tmp_path / "stats.npz"
        mu, sigma = (np.zeros(3), np.eye(3)) if case == "stats-shape" else (np.zeros(2048), np.eye(2048))
        if case == "stats-nan":
            sigma[3, 3] = np.nan
        np.savez(data, mu=mu, sigma=sigma)
        names = "fid50k_full,kid50k_full" if case == "stats-kid" else names
    elif case == "detector":
        names, dets["vgg16"] = "pr50k3_full", standins["inception"]
    elif case == "eq-sg2":
        names = "eqt50k_int"
    elif case == "no-data":
        data = None
    with pytest.raises(ValueError, match=match) as e:
        _quick(G, data, names, dets)
    assert "\n" not in str(e.value)


def test_read_statistics_of_pytorch_fid_files(tmp_path):
    mu, sigma = np.arange(2048, dtype=np.float32), np.eye(2048, dtype=np.float32)
    np.savez(tmp_path / "fid_stats_ffhq.npz", mu=mu, sigma=sigma)
    got_mu, got_sigma = read_statistics(tmp_path / "fid_stats_ffhq.npz")
    assert got_mu.dtype == np.float64 and np.array_equal(got_mu, mu) and np.array_equal(got_sigma, sigma)
    np.savez(tmp_path / "other.npz", m=mu)
    with pytest.raises(ValueError, match="holds m, not mu and sigma"):
        read_statistics(tmp_path / "other.npz")


def test_cli(G, standins, small_zip, tmp_path):
    from scripts.cli import main
    args = ["metrics", "--network", reference_path("sg2ada_skip.pkl"), "--data", small_zip, "--metrics",
            "fid50k_full,ppl2_wend", "--num-gen", "8", "--batch", "8", "--workers", "0", "--device", "cpu",
            "--inception", standins["inception"], "--vgg16", standins["vgg16"], "--run-dir", tmp_path,
            "--no-cache", "--save-stats", tmp_path / "stats.npz"]
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [line["metric"] for line in lines] == ["fid50k_full", "ppl2_wend"]
    assert (tmp_path / "metric-ppl2_wend.jsonl").read_text().count("\n") == 1
    assert read_statistics(tmp_path / "stats.npz")[0].shape == (2048,)
    assert "ppl2_wend" in r.stderr and "fid50k_full" in r.stderr
    bad = CliRunner().invoke(main, ["metrics", "--network", "x.pkl", "--metrics", "fid,ppl2_wend"])
    assert bad.exit_code != 0 and "unknown metric 'fid'" in bad.output and "Traceback" not in bad.output


def _features(data, rank=0, world=1):
    from stylegan.data import ImageDataset
    from stylegan.metrics.features import dataset_stats
    detectors = Detectors(dict(inception=str(reference_path("metrics/inception_standin.pt"))), torch.device("cpu"),
                          False, None, rank, world)
    opts = MetricOptions(G=None, dataset=ImageDataset(data), detectors=detectors, rank=rank, world_size=world,
                         batch_size=2, num_workers=0)
    return dataset_stats(opts, [(measures.INCEPTION_ALL, 7)])[0].get_all()


def _shard(rank, world, init, data, out):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    features = _features(data, rank, world)
    if rank == 0:
        np.save(out, features)
    dist.destroy_process_group()


def test_features_sharded_over_ranks_equal_one_process(small_zip, tmp_path):
    """Two ranks take items 0, 2, 4, 6 and 1, 3, 5, 0 (wrapped); interleaved and cut, they are items 0..6."""
    import torch.multiprocessing as mp
    mp.spawn(_shard, args=(2, f"file://{tmp_path / 'init'}", str(small_zip), str(tmp_path / "two.npy")), nprocs=2)
    one = _features(small_zip)
    assert one.shape == (7, 2048)
    np.testing.assert_allclose(np.load(tmp_path / "two.npy"), one, rtol=1e-5, atol=1e-5)   # other batch sizes


RANKED = "fid50k_full,kid50k_full,pr50k3_full,ppl2_wend"


def _measure(rank, world, init, data, standins, out):
    import os
    import torch.distributed as dist
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))       # as torchrun sets them: barriers run
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    G = stylegan.load(reference_path("sg2ada_skip.pkl")).generator.eval()
    results = compute(G, data, RANKED, device="cpu", detectors=standins, num_gen=16, batch_size=8, num_workers=0,
                      cache=False, rank=rank, world_size=world, seed=0)
    with open(f"{out}.{rank}.json", "w") as f:
        json.dump({k: v for r in results for k, v in r.results.items()}, f)
    dist.destroy_process_group()


def _same_draws_in_one_process(G, data, standins):
    """What two ranks compute, in one process: rank r's streams seeded r (seed x world + rank), its batches
    run through the detectors as the rank runs them, the results interleaved sample by sample."""
    from stylegan.data import ImageDataset
    from stylegan.metrics.features import draw_loader_seed, generated_images
    dets = Detectors(standins, torch.device("cpu"), False, None, 0, 1)
    real = {}
    for kind, request in (("inception", measures.INCEPTION_ALL), ("vgg16", measures.VGG16_ALL)):
        opts = MetricOptions(G=None, dataset=ImageDataset(data), detectors=dets, batch_size=4, num_workers=0)
        real[kind] = _features_of(opts, request)
    gen, dist, rngs = {"inception": [], "vgg16": []}, [], []
    for rank in (0, 1):
        opts = MetricOptions(G=G, dataset=ImageDataset(data), detectors=dets, batch_size=8, num_workers=0,
                             rng=np.random.RandomState(rank))
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(rank)
            draw_loader_seed()
            images = next(generated_images(opts))
            for kind in gen:
                gen[kind].append(dets(kind).features(images))
        rngs.append(opts.rng)
        opts = MetricOptions(G=G, dataset=ImageDataset(data), detectors=dets, rng=np.random.RandomState(rank))
        with torch.random.fork_rng():
            torch.manual_seed(rank)
            dist.append(ppl_distances(opts, 8, 1e-4, "w", "end", False, batch_size=2))
    gen = {k: torch.stack(v, dim=1).flatten(0, 1).numpy() for k, v in gen.items()}
    mu_cov = [_mean_cov(x) for x in (gen["inception"], real["inception"])]
    precision, recall = scores.precision_recall(torch.from_numpy(real["vgg16"]).half(),
                                                torch.from_numpy(gen["vgg16"]).half(), 3)
    return {"fid50k_full": scores.frechet_distance(*mu_cov[0], *mu_cov[1]),
            "kid50k_full": scores.kernel_inception_distance(gen["inception"], real["inception"], 100, 1000, rngs[0]),
            "pr50k3_full_precision": precision, "pr50k3_full_recall": recall,
            "ppl2_wend": scores.path_length(np.stack(dist, axis=1).reshape(-1))}


def _features_of(opts, request):
    from stylegan.metrics.features import dataset_stats
    return dataset_stats(opts, [(request, None)])[0].get_all()


def _mean_cov(x):
    from stylegan.metrics.features import FeatureStats
    s = FeatureStats(capture_mean_cov=True)
    s.append(x)
    return s.get_mean_cov()


def test_two_ranks_give_the_single_process_result_of_their_draws(G, standins, small_zip, tmp_path):
    """Two gloo ranks on the CPU: every rank returns the same values, and they are what one process
    computes from the same draws (rank r seeded r; features interleaved sample by sample, KID's subsets
    from rank 0's numpy stream after its label draws, PPL's samples interleaved per batch)."""
    import torch.multiprocessing as mp
    out = tmp_path / "ranked"
    mp.spawn(_measure, args=(2, f"file://{tmp_path / 'init'}", str(small_zip), standins, str(out)), nprocs=2)
    ranks = [json.loads(open(f"{out}.{r}.json").read()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    want = _same_draws_in_one_process(G, small_zip, standins)
    assert set(ranks[0]) == set(want)
    for key, value in want.items():
        assert ranks[0][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
