"""The metric formulas against direct computations (float64) and against NVIDIA's values given NVIDIA's
feature arrays (reference metrics/README.md: metrics_dev.npz, metrics_dev.json)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from conftest import reference_path
from stylegan.metrics import equivariance as eq
from stylegan.metrics import scores
from stylegan.metrics.features import FeatureStats


@pytest.fixture(scope="module")
def ref():
    with np.load(reference_path("metrics/metrics_dev.npz")) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(reference_path("metrics/metrics_dev.json").read_text())["values"]


def _stats(x: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    s = FeatureStats(capture_mean_cov=True)
    for i in range(0, len(x), batch):
        s.append(x[i:i + batch])
    return s.get_mean_cov()


# --- FID ---------------------------------------------------------------------------------------------

def test_trace_sqrtm_product_equals_scipy_sqrtm():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 48))
    y = rng.standard_normal((300, 48)) @ rng.standard_normal((48, 48)) * 0.3 + 0.1
    a, b = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    want = np.trace(scipy.linalg.sqrtm(a @ b)).real
    assert scores.trace_sqrtm_product(a, b) == pytest.approx(want, rel=1e-11)
    mu_a, mu_b = x.mean(0), y.mean(0)
    fid = np.square(mu_a - mu_b).sum() + np.trace(a + b - 2 * scipy.linalg.sqrtm(a @ b).real)
    assert scores.frechet_distance(mu_a, a, mu_b, b) == pytest.approx(fid, rel=1e-11)
    assert abs(scores.frechet_distance(mu_a, a, mu_a, a)) < 1e-9


@pytest.mark.parametrize("singular", ["first", "both"])
def test_trace_sqrtm_product_of_rank_deficient_covariances(singular):
    # Fewer samples than features: the covariances are singular (sqrtm is then ill-conditioned). With
    # a = Xa^T Xa / n, b = Xb^T Xb / n (centred X), tr sqrtm(a b) is the nuclear norm of Xa Xb^T / n.
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((20, 64))
    xb = rng.standard_normal((20 if singular == "both" else 400, 64)) * 0.5
    xa, xb = xa - xa.mean(0), xb - xb.mean(0)
    a, b = xa.T @ xa / len(xa), xb.T @ xb / len(xb)
    want = np.linalg.svd(xa @ xb.T / np.sqrt(len(xa) * len(xb)), compute_uv=False).sum()
    assert scores.trace_sqrtm_product(a, b) == pytest.approx(want, rel=1e-9)
    assert scores.trace_sqrtm_product(b, a) == pytest.approx(want, rel=1e-9)
    factor = scores.pivoted_cholesky(a)
    assert factor.shape == (64, 19) and np.allclose(factor @ factor.T, a, atol=1e-12)


def test_fid_of_nvidia_features(ref):
    arrays, values = ref
    mu_r, s_r = _stats(arrays["inception_real_features"])
    mu_g, s_g = _stats(arrays["inception_gen_features"])
    # NVIDIA's 53.89731650 comes from scipy's sqrtm of singular 2048x2048 covariances (200 samples); the
    # exact value of these covariances differs from it by 2.4e-6 relative (reference README, Tolerances).
    assert scores.frechet_distance(mu_g, s_g, mu_r, s_r) == pytest.approx(values["fid"], rel=1e-5)


# --- KID ---------------------------------------------------------------------------------------------

def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """MMD^2_u with k(a, b) = (a.b / d + 1)^3, from its definition (Gretton et al. 2012, eq. 3)."""
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b.T / d + 1) ** 3
    off = ~np.eye(m, dtype=bool)
    return k(x, x)[off].mean() + k(y, y)[off].mean() - 2 * k(x, y).mean()


def test_kid_is_the_unbiased_mmd_estimate():
    rng = np.random.default_rng(3)
    gen, real = rng.standard_normal((30, 16)) + 0.2, rng.standard_normal((25, 16))
    draws = np.random.RandomState(5)
    subsets = [(draws.choice(30, 10, replace=False), draws.choice(25, 10, replace=False)) for _ in range(4)]
    want = np.mean([_mmd2_unbiased(gen[i], real[j]) for i, j in subsets])
    got = scores.kernel_inception_distance(gen, real, 4, 10, np.random.RandomState(5))
    assert got == pytest.approx(want, rel=1e-12)


def test_kid_of_nvidia_features_and_draws(ref):
    arrays, values = ref
    # NVIDIA's numpy stream at the subsets: seed 0, then one randint(200) per generated image (256).
    rng = np.random.RandomState(0)
    for _ in range(256):
        rng.randint(200)
    state = rng.get_state()
    got = scores.kernel_inception_distance(arrays["inception_gen_features"], arrays["inception_real_features"],
                                           10, 100, rng)
    # float64 here, float32 in NVIDIA's code: 3.4e-6 apart.
    assert got == pytest.approx(values["kid"], rel=1e-5)
    rng.set_state(state)
    for s in range(10):
        assert rng.choice(200, 100, replace=False).tolist() == arrays["kid_subset_gen_idx"][s].tolist()
        assert rng.choice(200, 100, replace=False).tolist() == arrays["kid_subset_real_idx"][s].tolist()


# --- precision / recall ------------------------------------------------------------------------------

def _pr_brute_force(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float]:
    def dist(x, y):
        return np.sqrt(np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None] - 2 * x @ y.T, 0))

    def inside(manifold, probes):
        radius = np.sort(dist(manifold, manifold), axis=1)[:, k]     # k-th neighbour, self (distance 0) excluded
        return (dist(probes, manifold) <= radius[None]).any(axis=1).mean()
    return inside(real, gen), inside(gen, real)


def test_precision_recall_is_the_knn_manifold_rule():
    rng = np.random.default_rng(4)
    real, gen = rng.standard_normal((60, 8)), rng.standard_normal((50, 8)) * 1.3 + 0.4
    want = _pr_brute_force(real, gen, 3)
    got = scores.precision_recall(torch.from_numpy(real), torch.from_numpy(gen), 3, row_batch_size=16,
                                  col_batch_size=7)
    assert got == pytest.approx(want, abs=1e-6)         # fractions of 50 and 60 probes, as float32


def test_precision_recall_of_nvidia_features(ref):
    arrays, values = ref
    real = torch.from_numpy(arrays["vgg16_real_features"])
    gen = torch.from_numpy(arrays["vgg16_gen_features"])
    got = scores.precision_recall(real, gen, 3, 64, 64)
    # Distances in float16, as NVIDIA's: its 0.385 / 0.665 here. A CPU with other float16 rounding may
    # flip a probe sitting on a radius (reference README: float32 distances flip 1 and 3 of 200).
    assert got[0] == pytest.approx(values["pr_precision"], abs=1 / 200 + 1e-9)
    assert got[1] == pytest.approx(values["pr_recall"], abs=1 / 200 + 1e-9)
    exact = scores.precision_recall(real.double(), gen.double(), 3, 64, 64)
    assert exact == pytest.approx(_pr_brute_force(arrays["vgg16_real_features"].astype(np.float64),
                                                   arrays["vgg16_gen_features"].astype(np.float64), 3), abs=1e-6)


# --- IS, PPL, PSNR -----------------------------------------------------------------------------------

def test_inception_score():
    # Each split: 10 images, 5 classes, confident and balanced -> p(y) uniform over 5, KL = log 5.
    probs = np.full([20, 8], 1e-12)
    probs[np.arange(20), np.arange(20) % 5] = 1
    mean, std = scores.inception_score(probs / probs.sum(1, keepdims=True), num_splits=2)
    assert mean == pytest.approx(5, rel=1e-9) and std == pytest.approx(0, abs=1e-9)


def test_inception_score_of_nvidia_probabilities(ref):
    arrays, values = ref
    mean, std = scores.inception_score(arrays["is_gen_probs"], 10)
    assert mean == pytest.approx(values["is_mean"], rel=1e-6)
    assert std == pytest.approx(values["is_std"], rel=1e-5)


def test_path_length_of_nvidia_distances(ref):
    arrays, values = ref
    for key in ("ppl_wend", "ppl_zfull"):
        assert scores.path_length(arrays[f"{key}_dist"]) == values[key]
    dist = np.arange(1, 101, dtype=np.float32)          # the 1st and 99th percentiles keep 1..99 and 2..100
    assert scores.path_length(dist) == pytest.approx(np.arange(1, 101).mean(), rel=1e-7)
    assert scores.path_length(np.r_[np.full(198, 1.0), 1e9, -1e9].astype(np.float32)) == 1.0   # outliers dropped


def test_psnr():
    assert scores.psnr(4.0, 1.0) == pytest.approx(0.0)              # error of the full range 2
    assert scores.psnr(4e-6, 1.0) == pytest.approx(60.0)


# --- EQ: the pixel-space transforms against NVIDIA's synthesis outputs -------------------------------

def test_equivariance_transforms_reproduce_nvidia_psnr(ref):
    """The reference images NVIDIA's equivariance.py builds from its own synthesis outputs (every call of
    the combined EQ run is in the npz), through our transforms: the three PSNRs."""
    arrays, values = ref
    out = torch.from_numpy(arrays["eq_synthesis_out"])       # call 4 * batch + j: j = orig, EQ-T, EQ-T_frac, EQ-R
    res = out.shape[-1]
    sums = torch.zeros(6, dtype=torch.float64)
    for b in range(out.shape[0] // 4):
        orig, img_t, img_f, img_r = out[4 * b:4 * b + 4]
        t = (torch.from_numpy(arrays["eq_rand_t_int_raw"][b]) * 2 - 1) * 0.125
        t = (t * res).round() / res
        ref_t, m_t = eq.integer_translation(orig, t[0], t[1])
        f = (torch.from_numpy(arrays["eq_rand_t_frac_raw"][b]) * 2 - 1) * 0.125
        ref_f, m_f = eq.fractional_translation(orig, f[0], f[1])
        angle = (torch.from_numpy(arrays["eq_rand_angle_raw"][b:b + 1])[0] * 2 - 1) * np.pi
        ref_r, m_r = eq.fractional_rotation(orig, angle)
        pseudo, m_p = eq.fractional_pseudo_rotation(img_r, angle)
        terms = [(ref_t - img_t).square() * m_t, m_t, (ref_f - img_f).square() * m_f, m_f,
                 (ref_r - pseudo).square() * m_r * m_p, m_r * m_p]
        sums += torch.stack([x.to(torch.float64).sum() for x in terms])
        # The transforms G rendered under are the ones these draws give.
        np.testing.assert_allclose(arrays["eq_transforms"][4 * b + 1][:2, 2], -t.numpy(), atol=1e-7)
        np.testing.assert_allclose(arrays["eq_transforms"][4 * b + 3], eq.rotation_matrix(-angle).numpy(), atol=1e-6)
    got = [scores.psnr(float(sums[i]), float(sums[i + 1])) for i in (0, 2, 4)]
    assert got == pytest.approx([values["eqt_int"], values["eqt_frac"], values["eqr"]], abs=1e-4)


def test_integer_translation_moves_pixels():
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    z, m = eq.integer_translation(x, torch.tensor(2 / 8), torch.tensor(-1 / 8))
    assert torch.equal(z[:, :, 0:7, 2:8], x[:, :, 1:8, 0:6]) and m.sum() == 2 * 7 * 6
    f, mf = eq.fractional_translation(x, torch.tensor(2 / 8), torch.tensor(-1 / 8))
    inside = mf.bool()
    assert torch.allclose(f[inside], z[inside], atol=1e-4)       # whole-pixel shifts: Lanczos is exact
