"""Per-target outputs of a projection folder: the progress video, LPIPS in the metrics, the run record."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from stylegan.inversion import load_feature_net
from stylegan.inversion.losses import (DiscriminatorFeatures, FeatureDistance, MSSSIMDistance, PixelDistance, Sum,
                                       default_distance)
from stylegan.pipelines import project as pipeline
from stylegan.io.run_record import RUN_RECORD, RunMismatchError
from stylegan.pipelines.project import perceptual_net, project_targets, video_every

from conftest import fixture_model, load_npz, reference_path, run
from torch_utils.misc import network_digest
from standins import StandinFeatures


@pytest.fixture(scope="module")
def targets(G, tmp_path_factory):
    folder = tmp_path_factory.mktemp("targets")
    for s in (5, 6):
        Image.fromarray(stylegan.generate(G, [s])[0]).save(folder / f"t{s}.png")
    return folder


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_video_every_gives_a_short_clip():
    assert video_every(1000) == 10 and video_every(10) == 1 and video_every(1) == 1
    assert 90 <= -(-1000 // video_every(1000)) + 1 <= 110           # about a hundred frames for 1000 steps


@pytest.fixture
def captured(monkeypatch):
    """The frames of each progress video as they go to the encoder (the mp4 itself is lossy), by file name."""
    from contextlib import contextmanager
    videos = {}

    @contextmanager
    def capture(path, fps=30, provenance=None):
        videos[path.name] = frames = []
        yield frames.append

    monkeypatch.setattr(pipeline, "video_writer", capture)
    return videos


def test_progress_video_frames(G, targets, tmp_path, captured):
    out = tmp_path / "v"
    steps = 12
    events = []
    project_targets(G, [targets], out, PixelDistance, num_steps=steps, batch_size=2, video=True,
                    progress=events.append)
    seen = [(e.done, e.stats) for e in events]
    assert {e.stage for e in events} == {"project"} and {e.item for e in events} == {"t5, t6"}
    assert sorted(captured) == ["t5_progress.mp4", "t6_progress.mp4"]
    # The bar's PSNR is the step's image against its target, averaged over the batch: the frames hold
    # those images (as uint8), so the frames' own PSNR agrees to within quantisation.
    assert [step for step, _ in seen] == list(range(1, steps + 1))
    for i, (step, stats) in enumerate(seen[::video_every(steps)]):
        frames = [captured[f"t{s}_progress.mp4"][i] for s in (5, 6)]
        mse = [np.mean((f[:, 32:].astype(np.float64) - f[:, :32]) ** 2) for f in frames]
        assert abs(stats["psnr"] - np.mean([10 * np.log10(255 ** 2 / m) for m in mse])) < 0.2, step
        assert np.isfinite(stats["loss"])
    for name in ("t5", "t6"):
        frames = captured[f"{name}_progress.mp4"]
        assert len(frames) == -(-steps // video_every(steps)) + 1       # every k-th step, then the final image
        assert all(f.shape == (32, 64, 3) and f.dtype == np.uint8 for f in frames)
        np.testing.assert_array_equal(frames[-1][:, 32:], _png(out / f"{name}_proj.png"))
        assert all(np.array_equal(f[:, :32], _png(targets / f"{name}.png")) for f in frames)
        assert not np.array_equal(frames[0], frames[-1])
    assert not np.array_equal(captured["t5_progress.mp4"][0], captured["t6_progress.mp4"][0][:, ::-1])

    # Watching costs nothing in the result: the latent is the same bit for bit without the video.
    plain = tmp_path / "plain"
    project_targets(G, [targets], plain, PixelDistance, num_steps=steps, batch_size=2)
    for name in ("t5", "t6"):
        np.testing.assert_array_equal(np.load(out / f"{name}_projected_w.npz")["w"],
                                      np.load(plain / f"{name}_projected_w.npz")["w"])
        assert not (plain / f"{name}_progress.mp4").exists()


def test_progress_video_goes_on_through_tuning(G, targets, tmp_path, captured):
    out = tmp_path / "v"
    events = []
    project_targets(G, [targets / "t5.png"], out, PixelDistance, num_steps=4, pti_steps=6, video=True,
                    progress=events.append)
    assert [e.stage for e in events] == ["project"] * 4 + ["tune"] * 6 and events[-1].item == "t5"
    frames = captured["t5_progress.mp4"]
    # Projection: a frame per step and the result; tuning: a frame per step and the tuned image.
    assert len(frames) == 4 + 1 + 6 + 1
    np.testing.assert_array_equal(frames[4][:, 32:], _png(out / "t5_proj.png"))
    np.testing.assert_array_equal(frames[-1][:, 32:], _png(out / "t5_pti.png"))
    # Tuning frames are the tuned generator before each update: the first is still the projection.
    np.testing.assert_array_equal(frames[5][:, 32:], _png(out / "t5_proj.png"))
    assert not np.array_equal(frames[6][:, 32:], frames[5][:, 32:])


def test_progress_video_file_is_whole_or_absent(G, targets, tmp_path):
    import imageio.v2 as imageio
    out = tmp_path / "v"
    project_targets(G, [targets / "t5.png"], out, PixelDistance, num_steps=10, video=True)
    reader = imageio.get_reader(out / "t5_progress.mp4")
    frames = [f for f in reader]
    reader.close()
    assert len(frames) == 11 and frames[0].shape == (32, 64, 3)
    proj = _png(out / "t5_proj.png").astype(float)
    # Lossy codec (at 32 px, chroma subsampling alone moves pixels by ~9): the last frame's right
    # half is the projection up to that noise, far closer to it than the first frame is.
    last_err = np.abs(frames[-1][:, 32:] - proj).mean()
    assert last_err < 0.5 * np.abs(frames[0][:, 32:] - proj).mean()

    # Interrupted mid-projection: no video under the real name, and no temporary left behind.
    def stop(event):
        if event.done == 4:
            raise KeyboardInterrupt
    out2 = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        project_targets(G, [targets / "t5.png"], out2, PixelDistance, num_steps=10, video=True, progress=stop)
    assert sorted(p.name for p in out2.iterdir()) == [RUN_RECORD]


def test_perceptual_net_finds_the_feature_network(G):
    net = StandinFeatures(load_npz("lpips_standin"))
    assert perceptual_net(net) is net and perceptual_net(FeatureDistance(net)) is net
    assert perceptual_net(Sum([(1.0, PixelDistance()), (0.5, FeatureDistance(net))])) is net
    D = fixture_model()["D"]
    assert perceptual_net(default_distance(D)) is None                 # discriminator features: no metric
    assert perceptual_net(FeatureDistance(DiscriminatorFeatures(D))) is None
    assert perceptual_net(MSSSIMDistance()) is None and perceptual_net(PixelDistance()) is None


def test_metrics_lpips_is_the_feature_distance_of_the_saved_images(G, targets, tmp_path):
    ts = load_feature_net(reference_path("lpips_standin.pt"), trust_code=True)
    out = tmp_path / "p"
    project_targets(G, [targets], out, lambda: FeatureDistance(ts), num_steps=6, batch_size=2, pti_steps=3)
    # Closed form, computed apart: the fixture's arrays as a plain module, on the files written.
    mine = StandinFeatures(load_npz("lpips_standin"))

    def lpips(a, b):
        f = lambda x: mine(torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None])  # noqa: E731
        return float((f(a) - f(b)).square().sum())

    rows = {r["target"]: r for r in csv.DictReader(open(out / "metrics.csv"))}
    assert sorted(rows) == ["t5", "t6"]
    for name, row in rows.items():
        target = _png(targets / f"{name}.png")
        want = lpips(target, _png(out / f"{name}_proj.png"))
        assert want > 0 and float(row["lpips"]) == pytest.approx(want, rel=1e-5, abs=1e-7)
        assert float(row["pti_lpips"]) == pytest.approx(lpips(target, _png(out / f"{name}_pti.png")), rel=1e-5,
                                                        abs=1e-7)

    # A loss without a feature network leaves the column empty.
    plain = tmp_path / "plain"
    project_targets(G, [targets / "t5.png"], plain, PixelDistance, num_steps=2)
    row = next(csv.DictReader(open(plain / "metrics.csv")))
    assert row["lpips"] == "" and row["pti_lpips"] == "" and float(row["psnr"]) > 0


def test_rerun_with_other_settings_is_refused(G, targets, tmp_path):
    net = reference_path("sg2ada_skip.pkl")
    out = tmp_path / "proj"
    base = ("project", "--network", net, "--target", targets / "t5.png", "--outdir", out, "--no-identity")
    r = run(*base, "--steps", "3")
    assert r.exit_code == 0, r.output
    record = json.loads((out / RUN_RECORD).read_text())
    assert record["network"] == network_digest(G)
    assert (record["space"], record["steps"], record["seed"], record["loss"], record["pti_steps"]) == \
        ("w", 3, 303, "auto", None)

    for extra, said in ((("--steps", "4"), "--steps 3, not 4"),
                        (("--steps", "3", "--seed", "1"), "--seed 303, not 1"),
                        (("--steps", "3", "--space", "w+"), "--space w, not w+"),
                        (("--steps", "3", "--pti", "--pti-steps", "2"), "--pti-steps none, not 2")):
        r = run(*base, *extra)
        assert r.exit_code != 0 and said in r.output and "--overwrite" in r.output, (extra, r.output)
        assert len(r.output.strip().splitlines()) == 1, r.output
    r = run(*base, "--steps", "3")                                     # same settings: resumes
    assert r.exit_code == 0 and "1 already done" in r.output, r.output

    r = run(*base, "--steps", "4", "--overwrite")
    assert r.exit_code == 0 and "1 targets projected" in r.output, r.output
    assert json.loads((out / RUN_RECORD).read_text())["steps"] == 4

    # In Python: the error names the settings; a folder of results without a record is refused.
    with pytest.raises(RunMismatchError) as e:
        project_targets(G, [targets / "t5.png"], out, PixelDistance, num_steps=5, loss_name="auto")
    assert set(e.value.differences) == {"steps"}
    (out / RUN_RECORD).unlink()
    with pytest.raises(ValueError, match="no run record"):
        project_targets(G, [targets / "t5.png"], out, PixelDistance, num_steps=4, loss_name="auto")


def _rotation(degrees: float, tx: float, ty: float) -> np.ndarray:
    """The inverse of a rotate-then-translate of the output image, as NVIDIA's gen_images.py builds it."""
    a = np.deg2rad(degrees)
    m = np.array([[np.cos(a), np.sin(a), tx], [-np.sin(a), np.cos(a), ty], [0, 0, 1]])
    return np.linalg.inv(m)


def test_stylegan3_transform_renders_in_the_copy_only():
    from stylegan.images import to_uint8
    from stylegan.inversion import project
    G3 = fixture_model("sg3_t")["G_ema"]
    target = stylegan.generate(G3, [4])[0]
    kw = dict(num_steps=2, w_avg_samples=300, seed=1)
    before = {k: v.clone() for k, v in G3.state_dict().items()}

    # The identity transform is no transform, bit for bit.
    none = project(G3, target, PixelDistance(), **kw)
    eye = project(G3, target, PixelDistance(), transform=np.eye(3), **kw)
    assert torch.equal(none.w_steps, eye.w_steps) and np.array_equal(none.image, eye.image)

    # A rotation is applied to every render of the copy, and only there.
    m = _rotation(30, 0.1, -0.05)
    moved = project(G3, target, PixelDistance(), transform=m, **kw)
    assert all(torch.equal(v, before[k]) for k, v in G3.state_dict().items())       # caller's G untouched
    torch.testing.assert_close(moved.transform, torch.from_numpy(m).float(), rtol=0, atol=0)
    assert not torch.equal(moved.w_steps, none.w_steps)
    posed = stylegan.load(reference_path("sg3_t.pkl"))["G_ema"]
    with torch.no_grad():
        posed.synthesis.input.transform.copy_(torch.from_numpy(m))
        again = to_uint8(posed.synthesis(moved.ws[None]))[0]
        upright = to_uint8(G3.synthesis(moved.ws[None]))[0]
    np.testing.assert_array_equal(moved.image, again)
    assert not np.array_equal(moved.image, upright)

    with pytest.raises(ValueError, match="3x3"):
        project(G3, target, PixelDistance(), transform=np.eye(2), **kw)
    G2 = fixture_model()["G_ema"]
    with pytest.raises(ValueError, match="StyleGAN3"):
        project(G2, np.zeros([32, 32, 3], np.uint8), PixelDistance(), transform=np.eye(3), **kw)
