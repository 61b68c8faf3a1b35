"""Projection against NVIDIA's projector run on the sg2ada_skip fixture (projector_sg2ada_skip.npz)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stylegan
from stylegan.images import to_uint8
from stylegan.inversion import load_feature_net, project, project_batch
from stylegan.inversion.project import learning_rate, noise_regularizer

from conftest import load_npz, reference_path
from standins import StandinFeatures, standin_lpips


@pytest.fixture(scope="module")
def reference():
    return load_npz("projector_sg2ada_skip")


def test_standin_matches_its_torchscript(reference):
    # The plain module and the TorchScript file compute the same features (the test's premise).
    target = torch.from_numpy(reference["target_uint8"]).float()[None]
    ts = load_feature_net(reference_path("lpips_standin.pt"), trust_code=True)
    mine = StandinFeatures(load_npz("lpips_standin"))
    torch.testing.assert_close(mine(target), ts(target), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ts(target).numpy(), reference["target_features"], rtol=0, atol=1e-5)


# "lpips": our LPIPS module holding the stand-in's arrays (test_lpips checks it equals the TorchScript
# stand-in on images; here it must give NVIDIA's trajectory too).
@pytest.mark.slow
@pytest.mark.parametrize("features", ["torchscript", "lpips"])
def test_w_trajectory_matches_nvidia(reference, G, features):
    settings = json.loads(str(reference["settings"]))
    net = load_feature_net(reference_path("lpips_standin.pt"), trust_code=True) if features == "torchscript" \
        else standin_lpips()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    result = project(G, reference["target_uint8"].transpose(1, 2, 0), net, space="w",
                     num_steps=int(reference["num_steps"]), seed=int(reference["seed"]),
                     **{k: settings[k] for k in ("w_avg_samples", "initial_learning_rate", "initial_noise_factor",
                                                 "lr_rampdown_length", "lr_rampup_length", "noise_ramp_length",
                                                 "regularize_noise_weight")})
    np.testing.assert_allclose(result.dists, reference["dist"], rtol=1e-5, atol=0)
    # w moves 1.8 along the way. With torch's AVX2 or AVX-512 kernels (the fixture's machine had AVX2,
    # this one AVX-512) it stays within 1.4e-6 of NVIDIA's; Adam amplifies rounding, so torch's scalar
    # kernels (ATEN_CPU_CAPABILITY=default, no x86-64 CPU of the last decade needs them) drift to 2e-2.
    np.testing.assert_allclose(result.w_steps.numpy(), reference["w_out"], rtol=0, atol=2e-5)
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())   # G untouched
    assert result.ws.shape == (G.num_ws, G.w_dim) and result.image.shape == (32, 32, 3)


def test_learning_rate_schedule():
    # Closed form: 0 at the start, full rate in the middle, cosine to 0 at the end.
    assert learning_rate(0.0, 0.1, 0.05, 0.25) == 0.0
    assert learning_rate(0.025, 0.1, 0.05, 0.25) == pytest.approx(0.05)
    assert learning_rate(0.5, 0.1, 0.05, 0.25) == pytest.approx(0.1)
    assert learning_rate(0.875, 0.1, 0.05, 0.25) == pytest.approx(0.05)


def test_noise_regularizer_is_zero_for_white_noise_and_large_for_smooth():
    rng = torch.Generator().manual_seed(0)
    white = [torch.randn([1, 1, 64, 64], generator=rng)]
    smooth = [torch.ones([1, 1, 64, 64])]
    assert float(noise_regularizer(white)) < 1e-3
    # A constant map correlates perfectly with its shifts: 2 terms of 1 at each of 4 octaves.
    assert float(noise_regularizer(smooth)) == pytest.approx(8.0)


def test_bad_targets(G):
    net = StandinFeatures(load_npz("lpips_standin"))
    with pytest.raises(ValueError, match="shape"):
        project(G, np.zeros([64, 64, 3], np.uint8), net, num_steps=1)
    with pytest.raises(ValueError, match="unknown latent space"):
        project(G, np.zeros([32, 32, 3], np.uint8), net, space="z", num_steps=1)
    # One convention: [H, W, C] uint8. Channels first and floats are refused, saying what to give.
    with pytest.raises(ValueError, match=r"target has shape \[3, 32, 32\], channels first"):
        project(G, np.zeros([3, 32, 32], np.uint8), net, num_steps=1)
    with pytest.raises(ValueError, match=r"target is float32 .*expected \[H, W, C\] uint8"):
        project(G, np.zeros([32, 32, 3], np.float32), net, num_steps=1)


@pytest.mark.slow
def test_batch_targets_are_independent(reference, G):
    # Each target's trajectory depends on its own loss only: its partner in the batch changes nothing.
    net = StandinFeatures(load_npz("lpips_standin"))
    t1 = reference["target_uint8"].transpose(1, 2, 0)
    t2, t3 = t1[:, ::-1], 255 - t1
    a = project_batch(G, np.stack([t1, t2]), net, num_steps=8, w_avg_samples=500, seed=5)
    b = project_batch(G, np.stack([t1, t3]), net, num_steps=8, w_avg_samples=500, seed=5)
    torch.testing.assert_close(a[0].w_steps, b[0].w_steps, rtol=0, atol=1e-6)
    assert not torch.allclose(a[1].w_steps, b[1].w_steps)
    assert a[0].noise.keys() == {name for name, _ in G.synthesis.named_modules() if hasattr(_, "noise_const")}


@pytest.mark.slow
def test_w_plus_reconstructs_an_in_domain_target(G):
    # A target the network made from a known w: W+ gets far closer than the mean face it starts from.
    net = StandinFeatures(load_npz("lpips_standin"))
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(np.random.RandomState(11).randn(1, G.z_dim)), None)
        target = to_uint8(G.synthesis(ws, noise_mode="const"))[0]
    events = []
    result = project(G, target, net, space="w+", num_steps=80, w_avg_samples=1000, seed=1, progress=events.append,
                     preview_every=20)
    assert result.space == "w+" and result.ws.shape == (G.num_ws, G.w_dim)
    dists = [e.stats["dist"] for e in events]
    assert len(dists) == 80 and dists[-1] < 0.5 * dists[0]
    assert [e.done for e in events] == list(range(1, 81)) and {e.stage for e in events} == {"project"}
    # A preview every 20 steps: the step's image, one [H, W, C] uint8 image for one target.
    previews = [e.preview for e in events if e.preview is not None]
    assert [e.done for e in events if e.preview is not None] == [1, 21, 41, 61]
    assert all(p.shape == (32, 32, 3) and p.dtype == np.uint8 for p in previews)
    assert _psnr(previews[-1], target) > _psnr(previews[0], target) + 3
    # The step's PSNR is that of its image against the target (the preview is that image, quantised).
    assert abs(events[60].stats["psnr"] - _psnr(previews[-1], target)) < 0.2
    psnr = _psnr(result.image, target)
    assert psnr > 20, psnr


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_pivotal_tuning_reaches_what_the_pivot_cannot(G, tmp_path):
    from stylegan.inversion import pivotal_tuning
    net = StandinFeatures(load_npz("lpips_standin"))
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(np.random.RandomState(3).randn(1, G.z_dim)), None)
        img = to_uint8(G.synthesis(ws, noise_mode="const"))[0]
    target = np.ascontiguousarray(img[::-1])      # upside down: outside what W can draw
    target_hwc = target
    before = {k: v.clone() for k, v in G.state_dict().items()}
    pivot = project(G, target, net, num_steps=40, w_avg_samples=1000, seed=2)
    events = []
    tuned = pivotal_tuning(G, target, pivot, net, num_steps=60, dist_threshold=0.0, progress=events.append)
    assert len(tuned.dists) == 60 and tuned.dists[-1] < tuned.dists[0]
    assert [e.stats["dist"] for e in events] == tuned.dists and {e.stage for e in events} == {"tune"}
    assert all(e.preview.shape == (32, 32, 3) for e in events)
    assert _psnr(tuned.image, target_hwc) > _psnr(pivot.image, target_hwc) + 3
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())     # G untouched

    # The tuned generator is a whole network: saved and loaded, it draws the same image at the pivot.
    path = stylegan.save({"G_ema": tuned.G}, tmp_path / "tuned.stylegan")
    again = stylegan.load(path)["G_ema"]
    with torch.no_grad():
        a = again.synthesis(tuned.ws[None], noise_mode="const")
        b = tuned.G.synthesis(tuned.ws[None], noise_mode="const")
    assert torch.equal(a, b)

    # Early stop: a threshold above the first distance ends tuning before any update.
    stopped = pivotal_tuning(G, target, pivot, net, num_steps=60, dist_threshold=1e9)
    assert len(stopped.dists) == 1
    # By default PTI's 0.06 applies to a perceptual (feature) distance only: a pixel MSE already
    # below it must not stop tuning at once.
    from stylegan.inversion.losses import PixelDistance
    pixels = pivotal_tuning(G, target, pivot, PixelDistance(), num_steps=4)
    assert pixels.dists[0] < 0.06 and len(pixels.dists) == 4


def test_pivotal_tuning_locality_keeps_the_rest_of_the_space(G):
    from stylegan.inversion import pivotal_tuning
    net = StandinFeatures(load_npz("lpips_standin"))
    target = np.ascontiguousarray(load_npz("projector_sg2ada_skip")["target_uint8"].transpose(1, 2, 0)[:, ::-1])
    pivot = project(G, target, net, num_steps=20, w_avg_samples=500, seed=2)
    far = G.mapping(torch.from_numpy(np.random.RandomState(99).randn(4, G.z_dim)), None)

    def drift(locality_weight):
        tuned = pivotal_tuning(G, target, pivot, net, num_steps=40, dist_threshold=0.0, learning_rate=3e-3,
                               locality_weight=locality_weight, locality_samples=4, locality_alpha=10.0)
        with torch.no_grad():
            return float((tuned.G.synthesis(far, noise_mode="none") - G.synthesis(far, noise_mode="none")).abs().mean())

    assert drift(10.0) < 0.8 * drift(0.0)
