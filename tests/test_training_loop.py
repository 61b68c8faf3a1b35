"""The training loop on the CPU: a run of a few ticks, its folder and snapshots; stop and resume equal to
an uninterrupted run bit for bit; fine-tuning from NVIDIA, rosinality and our files; NVIDIA's data order;
bad inputs as one line. Networks are tiny (32 px, a few channels), so a run takes seconds."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import stylegan
from scripts.cli import main
from stylegan.loaders import native
from stylegan.training.config import TrainingOptions
from stylegan.training.data import InfiniteSampler
from stylegan.training.loop import TrainingError, resume_training, train
from stylegan.training.snapshot import read_state

from conftest import one_line_error, reference_path

TINY = dict(cfg="stylegan2", batch=4, cbase=256, cmax=16, map=2, metrics=(), workers=0, tick=0.004, snap=1)
TINY_FLAGS = ["--cfg", "stylegan2", "--batch", "4", "--cbase", "256", "--cmax", "16", "--map", "2",
              "--metrics", "none", "--workers", "0", "--tick", "0.004"]


def blobs(n: int, res: int = 32, seed: int = 0) -> list[np.ndarray]:
    """Smooth coloured blobs: images a tiny GAN can start to learn."""
    rnd = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:res, 0:res] / res
    out = []
    for _ in range(n):
        c, (cx, cy) = rnd.rand(3), rnd.rand(2)
        out.append((np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) * 8)[..., None] * c * 255).astype(np.uint8))
    return out


def make_zip(path, images, labels=None, extra: dict | None = None):
    names = [f"{i // 1000:05d}/img{i:08d}.png" for i in range(len(images))]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, img in zip(names, images):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="png")
            z.writestr(name, buf.getvalue())
        if labels is not None:
            z.writestr("dataset.json", json.dumps({"labels": [[n, int(v)] for n, v in zip(names, labels)]}))
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_zip(tmp_path_factory.mktemp("data") / "blobs.zip", blobs(16))


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny networks: thousands of small ops per step, where a thread pool only waits on itself
    # (10x slower with 2 threads on a loaded 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(*args):
    return CliRunner().invoke(main, ["train", *map(str, args)])


def states(path):
    specs, _ = native.read(path)
    return {k: spec.tensors for k, spec in specs.items()}


# ----------------------------------------------------------------------------------------------


def test_cpu_run_writes_nvidias_run_folder_and_its_snapshots_are_networks(data, tmp_path):
    r = run_cli("--data", data, "--outdir", tmp_path, "--kimg", "0.012", "--snap", "2", *TINY_FLAGS)
    assert r.exit_code == 0, r.output
    (run,) = tmp_path.iterdir()
    names = {p.name for p in run.iterdir()}
    assert {"training_options.json", "reals.png", "fakes_init.png", "stats.jsonl", "log.txt"} <= names
    snaps = sorted(run.glob("network-snapshot-*.stylegan"))
    assert [p.name for p in snaps] == ["network-snapshot-000000.stylegan"]
    ticks = [line for line in r.output.splitlines() if line.startswith("train ") and "sec/kimg" in line]
    assert len(ticks) == 3 and "kimg 0.004" in ticks[0] and "augment 0" in ticks[0]  # 12 images, a tick per 4
    log = (run / "log.txt").read_text().splitlines()                                   # NVIDIA's tick lines
    assert len(log) == 3 and log[0].startswith("tick 0 ") and "maintenance" in log[0] and "augment 0.000" in log[0]
    lines = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for key in ("Loss/G/loss", "Loss/D/loss", "Loss/scores/real", "Loss/signs/fake", "Loss/r1_penalty",
                "Loss/pl_penalty", "Progress/kimg", "Timing/sec_per_kimg", "Resources/cpu_mem_gb", "Progress/augment"):
        assert key in lines[0] and set(lines[0][key]) == {"num", "mean", "std"}, key
    assert lines[-1]["Progress/kimg"]["mean"] == pytest.approx(0.012)       # float32, as NVIDIA reduces
    assert np.isfinite(lines[-1]["Loss/G/loss"]["mean"])
    # The snapshot is a network for every command: generate from it.
    nets = stylegan.load(snaps[-1])
    assert set(nets.keys()) == {"G", "D", "G_ema"} and nets.metadata["training_set_kwargs"]["resolution"] == 32
    images = stylegan.generate(nets.generator, seeds=[0, 1])
    assert images.shape == (2, 32, 32, 3) and images.std() > 0
    # The fakes grid says it is the snapshot's G_ema's pixels; the reals grid claims nothing.
    from stylegan.provenance import verify
    from torch_utils.misc import network_digest
    fakes = verify(run / "fakes000000.png").metadata
    assert fakes["synthetic"] and fakes["operation"] == "train" and fakes["network"] == network_digest(nets.G_ema)
    assert fakes["details"]["run"] == run.name and fakes["details"]["kimg"] == pytest.approx(0.012)
    assert verify(run / "reals.png").metadata["synthetic"] is False
    g = CliRunner().invoke(main, ["generate", "--network", str(snaps[-1]), "--seeds", "0-1", "--outdir",
                                  str(tmp_path / "gen")])
    assert g.exit_code == 0 and len(list((tmp_path / "gen").glob("seed*.png"))) == 2, g.output


def test_stop_and_resume_equals_an_uninterrupted_run(data, tmp_path):
    """Stopped mid ADA interval and mid tick, then continued: G, D, G_ema, Adam, p, pl_mean, the data
    order and the random streams carry on as if nothing happened."""
    options = TrainingOptions(data=str(data), outdir=str(tmp_path), kimg=0.032, aug="ada", target=0.0, **TINY)
    whole = train(options)
    calls = []
    first = train(options, should_stop=lambda: calls.append(1) or len(calls) >= 3)
    assert first.stopped and first.cur_nimg == 12
    second = resume_training(first.run_dir)
    assert second.cur_nimg == whole.cur_nimg == 32 and not second.stopped
    a, b = states(whole.snapshot), states(second.snapshot)
    for net in ("G", "D", "G_ema"):
        for name, t in a[net].items():
            assert torch.equal(t, b[net][name]), (net, name)
    sa, sb = read_state(whole.snapshot), read_state(second.snapshot)
    assert float(sa["trainer"]["augment_p"]) > 0            # ADA moved p
    for key in ("augment_p", "pl_mean"):
        assert torch.equal(sa["trainer"][key], sb["trainer"][key]), key
    for x, y in zip(sa["trainer"]["opt"]["G"]["state"].values(), sb["trainer"]["opt"]["G"]["state"].values()):
        assert torch.equal(x["exp_avg_sq"], y["exp_avg_sq"])
    # The continued run's stats.jsonl holds its whole history, with no line from after the snapshot doubled.
    kimgs = [json.loads(line)["Progress/kimg"]["mean"] for line in (first.run_dir / "stats.jsonl").open()]
    assert kimgs == sorted(set(kimgs)) and kimgs[-1] == pytest.approx(0.032)


def test_a_failed_snapshot_write_stops_cleanly_and_keeps_the_previous(data, tmp_path, monkeypatch):
    from stylegan.training import loop
    written = []
    real = loop.save_snapshot

    def disk_fills(path, *args, **kwargs):
        if written:
            raise OSError(28, "No space left on device")
        written.append(real(path, *args, **kwargs))
        return written[-1]

    monkeypatch.setattr(loop, "save_snapshot", disk_fills)
    with pytest.raises(TrainingError, match="No space left on device.*intact"):
        train(TrainingOptions(data=str(data), outdir=str(tmp_path), kimg=0.012, **TINY))
    (run,) = tmp_path.iterdir()
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []      # no temporary left
    assert stylegan.load(written[0]).G_ema is not None


@pytest.mark.parametrize("source", ["sg2ada_skip.pkl", "rosinality.pt", "sg3_t.pkl"])
def test_fine_tuning_starts_from_the_file(data, tmp_path, source):
    """NVIDIA pickles (StyleGAN2-ADA, StyleGAN3) and a rosinality checkpoint: the run takes the file's
    shapes (z 64, its depth and capacity) and its weights, and moves them by a few learning rates."""
    path = reference_path(source)
    extra = dict(gamma=1.0) if source.startswith("sg3") else {}
    options = TrainingOptions(data=str(data), outdir=str(tmp_path), kimg=0.004, resume=str(path), batch=4,
                              metrics=(), workers=0, tick=0.004, **extra)
    result = train(options)
    tuned, start = stylegan.load(result.snapshot), stylegan.load(path)
    G0 = start.G if start.G is not None else start.G_ema
    assert tuned.G.init_kwargs["z_dim"] == 64 and type(tuned.G) is type(G0)
    moved = {k: (t - G0.state_dict()[k]).abs().max().item() for k, t in tuned.G.state_dict().items()
             if k in dict(G0.named_parameters())}
    assert 0 < max(moved.values()) < 0.1, moved


def test_infinite_sampler_is_nvidias_order():
    """NVIDIA's InfiniteSampler with seed 1 over 16 images fed these items to the recorded iterations."""
    with np.load(reference_path("training_sg2ada32.npz"), allow_pickle=False) as z:
        recorded = [z[f"it{i}/sampler_idx"].tolist() for i in range(4)]
    sampler = InfiniteSampler(16, seed=1)
    assert [sampler.take(4) for _ in range(4)] == recorded
    # Two ranks split the same stream; a restored state continues it.
    ranks = [InfiniteSampler(16, rank=r, num_replicas=2, seed=1) for r in range(2)]
    assert [x for pair in zip(ranks[0].take(8), ranks[1].take(8)) for x in pair] == sum(recorded, [])
    again = InfiniteSampler(16, seed=1)
    again.take(5)
    copy = InfiniteSampler(16, seed=1)
    copy.load_state_dict(again.state_dict())
    assert copy.take(40) == again.take(40)


# ----------------------------------------------------------------------------------------------
# Bad inputs: one line, nothing started.


def test_bad_data_sets(tmp_path, data):
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(run_cli("--data", empty, "--outdir", tmp_path / "o", *TINY_FLAGS), "no images")
    odd = make_zip(tmp_path / "odd.zip", blobs(4, res=24))
    one_line_error(run_cli("--data", odd, "--outdir", tmp_path / "o", *TINY_FLAGS), "power-of-two")
    one_line_error(run_cli("--data", data, "--outdir", tmp_path / "o", "--cond", "1", *TINY_FLAGS), "--cond", "labels")
    mixed = make_zip(tmp_path / "mixed.zip", blobs(3) + blobs(1, res=16))
    one_line_error(run_cli("--data", mixed, "--outdir", tmp_path / "o", "--kimg", "0.1", *TINY_FLAGS), "16x16")
    corrupt = make_zip(tmp_path / "corrupt.zip", blobs(3), extra={"00000/img00000009.png": b"\x89PNG\r\n\x1a\nbroken"})
    one_line_error(run_cli("--data", corrupt, "--outdir", tmp_path / "o", "--kimg", "0.1", *TINY_FLAGS),
                   "img00000009.png")
    assert not list((tmp_path / "o").glob("*/network-snapshot-*"))
    one_line_error(run_cli("--data", tmp_path / "nowhere.zip", "--outdir", tmp_path / "o", *TINY_FLAGS),
                   "nowhere.zip", "no such data set")


def test_bad_outdirs_and_resume_files(tmp_path, data):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for outdir in (a_file, a_file / "runs"):          # as unwritable as a folder gets when tests run as root
        one_line_error(run_cli("--data", data, "--outdir", outdir, "--kimg", "0.004", *TINY_FLAGS), "a_file")
    one_line_error(run_cli("--data", data, "--outdir", tmp_path / "o", "--kimg", "0.004", "--resume", a_file,
                           *TINY_FLAGS), "a_file", "not a model file")
    network = reference_path("sg2ada_skip.pkl")       # a network, not a run: fine-tuning it needs data
    one_line_error(run_cli("--resume", network), "without training state", "--data")
    one_line_error(run_cli("--resume", tmp_path / "no-run"), "no-run", "no such run")
    empty = tmp_path / "empty-run"
    empty.mkdir()
    one_line_error(run_cli("--resume", empty), "no network-snapshot")
    with pytest.raises(ValueError, match="without training state"):
        resume_training(network)
    assert not list(tmp_path.glob("**/network-snapshot-*"))


def test_bad_options_and_resumes(tmp_path, data):
    one_line_error(run_cli("--data", data, "--outdir", tmp_path, "--cfg", "stylegan3-t", "--batch", "4"), "--gamma")
    one_line_error(run_cli("--data", data, "--outdir", tmp_path, "--gpus", "3", *TINY_FLAGS), "divisible")
    one_line_error(run_cli("--data", data, "--outdir", tmp_path, "--aug", "fixed", *TINY_FLAGS), "--p")
    sg2 = reference_path("sg2ada_skip.pkl")
    one_line_error(run_cli("--data", data, "--outdir", tmp_path, "--cfg", "stylegan3-t", "--gamma", "1", "--batch",
                           "4", "--resume", sg2), "stylegan2 network")
    big = make_zip(tmp_path / "big.zip", blobs(4, res=64))
    one_line_error(run_cli("--data", big, "--outdir", tmp_path, "--resume", sg2, "--batch", "4"), "32 px", "64 px")
    one_line_error(run_cli("--data", data, "--outdir", tmp_path, "--resume", tmp_path / "nothing.pkl"), "nothing.pkl")
    r = run_cli("--data", data, "--outdir", tmp_path / "runs", "--kimg", "0.004", *TINY_FLAGS)
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path / "runs").iterdir()
    one_line_error(run_cli("--resume", run, "--gamma", "3"), "--gamma", "cannot change")
    r = run_cli("--resume", run, "--kimg", "0.008")
    assert r.exit_code == 0 and "done at kimg 0.008" in r.output, r.output
    assert read_state(sorted(run.glob("network-snapshot-*"))[-1])["trainer"]["cur_nimg"] == 8


def test_two_processes_with_gloo(data, tmp_path):
    """--gpus 2 on the CPU: the command relaunches itself under torchrun (gloo); both ranks train one
    batch split in two, gradients averaged, and agree on the weights at every snapshot (checked by the
    loop, as NVIDIA's does); rank 0 alone writes."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(repo))
    cmd = [sys.executable, "-m", "scripts.cli", "train", "--data", str(data), "--outdir", str(tmp_path),
           "--gpus", "2", "--kimg", "0.008", "--snap", "1", "--device", "cpu", *TINY_FLAGS]
    r = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    (run,) = tmp_path.iterdir()
    assert r.stderr.count("tick 1 ") == 1                        # one rank prints
    state = read_state(sorted(run.glob("network-snapshot-*.stylegan"))[-1])
    assert state["trainer"]["cur_nimg"] == 8 and len(state["ranks"]) == 2
    assert stylegan.load(sorted(run.glob("network-snapshot-*.stylegan"))[-1]).G_ema is not None


# ----------------------------------------------------------------------------------------------
# --metrics: one seam, `metrics_fn` (stylegan.metrics.compute unless given).


class _Result:
    def __init__(self, name, results):
        self.name, self.results, self.seconds = name, results, 0.5

    def jsonl(self, snapshot=None):
        return json.dumps({"results": self.results, "metric": self.name, "snapshot_pkl": snapshot})


def test_metrics_run_at_every_snapshot_through_the_seam(data, tmp_path):
    calls = []

    def stand_in(G, dataset, names, *, device, progress, rank, world_size):
        # A closed-form 'metric' of the network it is handed: the mean of its first weight.
        from torch_utils.misc import network_digest
        value = float(next(G.parameters()).mean())
        calls.append((network_digest(G), len(dataset), tuple(names), str(device), rank, world_size, value))
        return [_Result(n, {f"{n}_value": value}) for n in names]

    options = TrainingOptions(data=str(data), outdir=str(tmp_path), kimg=0.008, **dict(TINY, metrics=("m1", "m2")))
    result = train(options, device="cpu", metrics_fn=stand_in)
    assert len(calls) == 2                                      # snapshots at kimg 0.004 and 0.008 (snap 1)
    run = result.run_dir
    for G, n, names, device, rank, world, value in calls:
        assert n == 16 and names == ("m1", "m2") and device == "cpu" and (rank, world) == (0, 1)
    from torch_utils.misc import network_digest
    assert calls[-1][0] == network_digest(stylegan.load(result.snapshot).G_ema)   # the G_ema the snapshot holds
    for name in ("m1", "m2"):
        lines = [json.loads(x) for x in (run / f"metric-{name}.jsonl").read_text().splitlines()]
        assert [x["snapshot_pkl"] for x in lines] == ["network-snapshot-000000.stylegan"] * 2
        assert lines[-1]["results"] == {f"{name}_value": calls[-1][-1]}
    assert not any("Metrics/" in line for line in (run / "stats.jsonl").read_text().splitlines())  # NVIDIA's keys


def test_fid_at_each_snapshot_is_the_metrics_library_on_that_snapshot(data, tmp_path):
    """`--metrics fid50k_full` end to end through the real stylegan.metrics (stand-in Inception, a
    quick count): the value logged for the last snapshot is what the library gives for the G_ema
    that snapshot holds, on the same data."""
    import functools
    from stylegan.metrics import compute
    quick = dict(detectors={"inception": str(reference_path("metrics/inception_standin.pt"))}, num_gen=16,
                 cache=False, num_workers=0)
    options = TrainingOptions(data=str(data), outdir=str(tmp_path), kimg=0.008, **dict(TINY, metrics=("fid50k_full",)))
    result = train(options, device="cpu", metrics_fn=functools.partial(compute, **quick))
    lines = [json.loads(x) for x in (result.run_dir / "metric-fid50k_full.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["metric"] == "fid50k_full"
    logged = lines[-1]["results"]["fid50k_full"]
    want = compute(stylegan.load(result.snapshot).G_ema, str(data), "fid50k_full", device="cpu", **quick)[0]
    assert np.isfinite(logged) and logged > 0
    assert logged == pytest.approx(want.results["fid50k_full"], rel=1e-5)


def test_metrics_missing_library_or_bad_name(data, tmp_path, monkeypatch):
    import stylegan.training.loop as loop
    monkeypatch.setattr(loop, "_library_metrics", lambda: None)
    events = []
    options = TrainingOptions(data=str(data), outdir=str(tmp_path / "a"), kimg=0.004, **dict(TINY, metrics=("fid",)))
    result = train(options, device="cpu", progress=events.append)
    assert result.snapshot is not None and not list(result.run_dir.glob("metric-*"))
    notes = [e.item for e in events if e.stage == "metrics"]
    assert len(notes) == 1 and "no stylegan.metrics" in notes[0]
    assert "no stylegan.metrics" in (result.run_dir / "log.txt").read_text()

    def unknown(G, dataset, names, **kwargs):
        raise ValueError(f"unknown metric {names[0]!r}")
    options = TrainingOptions(data=str(data), outdir=str(tmp_path / "b"), kimg=0.004, **dict(TINY, metrics=("fdi",)))
    with pytest.raises(TrainingError, match="unknown metric 'fdi'.*--metrics none"):
        train(options, device="cpu", metrics_fn=unknown)
    assert list((tmp_path / "b").glob("*/network-snapshot-*"))     # the snapshot before the metric stays
