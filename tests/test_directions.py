"""Directions: methods recover planted truths; every shared file format loads."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import stylegan
from stylegan.editing import Direction, cosine, ganspace, load_direction, save_direction
from stylegan.editing.ganspace import pca
from stylegan.editing.interfacegan import boundary, linear_svm, ridge_direction
from stylegan.seeds import z_from_seeds

from conftest import fixture_model, reference_path


def planted(n=4000, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=dim)
    axis /= np.linalg.norm(axis)
    x = rng.normal(0, 0.3, [n, dim]) + rng.normal(0, 3.0, [n, 1]) * axis + 5.0
    return x, axis


def test_pca_recovers_a_planted_axis_in_any_batching():
    x, axis = planted()
    whole = pca([x], x.shape[1], 3)
    split = pca(np.array_split(x, 7), x.shape[1], 3)
    assert abs(float(whole.vectors[0].double() @ torch.from_numpy(axis))) > 0.999
    assert whole.std[0] == pytest.approx(3.0, rel=0.05) and whole.std[1] < 0.35
    np.testing.assert_allclose(whole.mean.numpy(), x.mean(axis=0), rtol=1e-5)
    torch.testing.assert_close(whole.vectors, split.vectors, rtol=0, atol=1e-5)


def test_ganspace_on_a_network():
    G = fixture_model()["G_ema"]
    d = ganspace(G, num_samples=3000, num_components=5, batch_size=1000)
    assert d.vectors.shape == (5, G.w_dim) and d.space == "w" and d.method == "ganspace"
    assert torch.all(d.std[:-1] >= d.std[1:])
    torch.testing.assert_close(d.vectors @ d.vectors.T, torch.eye(5), rtol=0, atol=1e-5)


def test_linear_svm_separates():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(2, 1, [100, 2]), rng.normal(-2, 1, [100, 2])])
    y = np.r_[np.ones(100), -np.ones(100)]
    w, b = linear_svm(x, y)
    assert np.mean(np.sign(x @ w + b) == y) > 0.95


def test_interfacegan_recovers_a_planted_direction_and_conditions_hold():
    rng = np.random.default_rng(2)
    dim = 64
    x = rng.normal(size=[5000, dim])
    v = rng.normal(size=dim)
    v /= np.linalg.norm(v)
    scores = x @ v + rng.normal(0, 0.1, 5000)
    for method, ratio in [("ridge", None), ("svm", 0.1)]:
        n = boundary(x, scores, method=method, ratio=ratio)
        assert n @ v >= 0.95, method
        # Conditional: orthogonal to the conditions, and still the planted direction within the rest.
        c1, c2 = rng.normal(size=dim), v + rng.normal(0, 0.5, dim)
        nc = boundary(x, scores, method=method, ratio=ratio, conditions=[c1, c2])
        basis, _ = np.linalg.qr(np.stack([c1, c2], 1))
        assert np.abs(basis.T @ nc).max() < 1e-10
        rest = v - basis @ (basis.T @ v)
        assert nc @ rest / np.linalg.norm(rest) >= 0.95, method
    with pytest.raises(ValueError, match="span"):                     # conditions that span everything
        boundary(x, scores, conditions=list(np.eye(dim)))
    with pytest.raises(ValueError, match="ratio applies to method 'svm' only"):
        boundary(x, scores, ratio=0.1)
    with pytest.raises(ValueError, match="method must be one of ridge, svm"):
        boundary(x, scores, method="lasso")


def test_ridge_is_the_textbook_ridge_at_the_cross_validated_penalty():
    """Against the SVD form, beta = V diag(s / (s^2 + lam)) U^T y, with the penalty chosen by
    brute-force generalised cross-validation over the same grid; fewer samples than dimensions too."""
    rng = np.random.default_rng(4)
    for n, dim in [(300, 20), (30, 50)]:
        x = rng.normal(size=[n, dim]) * np.logspace(0, -2, dim) + 3.0
        y = x @ rng.normal(size=dim) + 0.05 * rng.normal(size=n)
        xc, yc = x - x.mean(0), y - y.mean()
        u, sv, vt = np.linalg.svd(xc, full_matrices=False)

        def fit(lam):
            return vt.T @ (sv / (sv ** 2 + lam) * (u.T @ yc))

        def gcv(lam):
            residual = yc - xc @ fit(lam)
            return (residual @ residual) / (n - np.sum(sv ** 2 / (sv ** 2 + lam))) ** 2

        grid = np.logspace(-8, 2, 41) * np.mean((sv ** 2)[sv ** 2 > sv.max() ** 2 * 1e-12])
        want = fit(grid[np.argmin([gcv(lam) for lam in grid])])
        np.testing.assert_allclose(ridge_direction(x, y), want, rtol=1e-7, atol=1e-9 * np.abs(want).max())


def test_interfacegan_finds_a_planted_direction_in_a_real_mapping_networks_w():
    """4 000 seeds scored w.d plus 5 % noise, in the W of a mapping network (the fixture's, as
    anisotropic as a trained one's): the default estimator recovers d; the paper's SVM on the top and
    bottom 2 % of the same scores does not, which is what makes this W a test."""
    G = fixture_model()["G_ema"]
    seeds = list(range(4000))
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(z_from_seeds(seeds, G.z_dim)), None)[:, 0].double().numpy()
    eig = np.linalg.eigvalsh(np.cov(w.T))
    assert eig.max() / eig.min() > 1000                              # the premise: strongly anisotropic
    rng = np.random.default_rng(5)
    d = rng.normal(size=G.w_dim)
    d /= np.linalg.norm(d)
    p = w @ d
    scores = dict(zip(seeds, (p + 0.05 * p.std() * rng.normal(size=len(p))).tolist()))
    found = stylegan.editing.interfacegan(G, scores)
    assert found.params["estimator"] == "ridge" and found.params["num_samples"] == 4000
    assert float(found.vectors[0].double() @ torch.from_numpy(d)) >= 0.9
    classic = stylegan.editing.interfacegan(G, scores, method="svm")
    assert classic.params["ratio"] == 0.02 and abs(float(classic.vectors[0].double() @ torch.from_numpy(d))) < 0.8
    # Conditional on another attribute: orthogonal to it, and the planted direction within the rest.
    other = Direction(torch.from_numpy(rng.normal(size=[1, G.w_dim])).float())
    cond = stylegan.editing.interfacegan(G, scores, conditions=[other])
    c = other.vectors[0].double() / other.vectors[0].double().norm()
    assert abs(float(cond.vectors[0].double() @ c)) < 1e-6
    rest = torch.from_numpy(d) - c * (c @ torch.from_numpy(d))
    assert float(cond.vectors[0].double() @ rest / rest.norm()) >= 0.9


def test_own_format_round_trip(tmp_path):
    d = Direction(torch.nn.functional.normalize(torch.randn(3, 16), dim=1), "w", "ganspace", std=torch.rand(3),
                  mean=torch.randn(16), layers=[0, 1, 2], network_digest="abc", params={"num_samples": 10})
    path = save_direction(d, tmp_path / "d.direction")
    e = load_direction(path)
    assert torch.equal(e.vectors, d.vectors) and torch.equal(e.std, d.std) and torch.equal(e.mean, d.mean)
    assert (e.space, e.method, e.layers, e.network_digest, e.params) == ("w", "ganspace", [0, 1, 2], "abc",
                                                                         {"num_samples": 10})
    with pytest.raises(FileExistsError):
        save_direction(d, path)
    assert cosine(d, e, 1, 1) == pytest.approx(1.0)


def test_shared_formats(tmp_path):
    rng = np.random.default_rng(3)
    v = rng.normal(size=[1, 512]).astype(np.float32)
    np.save(tmp_path / "smile.npy", v / np.linalg.norm(v))                       # InterFaceGAN boundary
    d = load_direction(tmp_path / "smile.npy", w_dim=512)
    np.testing.assert_allclose(d.vectors.numpy(), v / np.linalg.norm(v), rtol=1e-6)

    comp = rng.normal(size=[10, 1, 512]).astype(np.float32)
    comp /= np.linalg.norm(comp, axis=2, keepdims=True)
    np.savez(tmp_path / "ganspace.npz", lat_comp=comp, lat_mean=np.zeros([1, 512], np.float32),
             lat_stdev=np.arange(10, 0, -1).astype(np.float32))                  # GANSpace
    d = load_direction(tmp_path / "ganspace.npz")
    assert d.vectors.shape == (10, 512) and d.std[0] == 10 and d.method == "ganspace"

    torch.save({"comp": torch.from_numpy(comp), "std": torch.ones(10), "mean": torch.zeros(1, 512)},
               tmp_path / "ffhq_pca.pt")                                          # e4e
    assert load_direction(tmp_path / "ffhq_pca.pt").vectors.shape == (10, 512)
    eig = torch.linalg.qr(torch.randn(512, 512))[0]
    torch.save({"ckpt": "stylegan2-ffhq.pt", "eigvec": eig}, tmp_path / "factor.pt")  # rosinality SeFa
    d = load_direction(tmp_path / "factor.pt")
    torch.testing.assert_close(d.vectors[5], eig[:, 5])
    torch.save(torch.from_numpy(v), tmp_path / "age.pt")                            # e4e / PTI tensor
    assert load_direction(tmp_path / "age.pt").vectors.shape == (1, 512)


def test_bad_direction_files(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    np.save(tmp_path / "cube.npy", np.zeros([2, 2, 2]))
    np.save(tmp_path / "small.npy", np.ones([1, 64]))

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))
    torch.save({"eigvec": Evil()}, tmp_path / "evil.pt", _use_new_zipfile_serialization=True)
    cases = {"missing.npy": "no such file", "x.txt": "not a direction", "other.npz": "lat_comp",
             "cube.npy": "must be", "evil.pt": "not a readable direction", ".": "folder"}
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message) as e:
            load_direction(tmp_path / name)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="64 dimensions"):
        load_direction(tmp_path / "small.npy", w_dim=512)


def test_interfacegan_and_compare_on_the_command_line(tmp_path):
    from click.testing import CliRunner
    from scripts.cli import main
    net = reference_path("sg2ada_skip.pkl")
    G = stylegan.load(net)["G_ema"]
    seeds = list(range(600))
    with torch.no_grad():
        w = G.mapping(torch.from_numpy(z_from_seeds(seeds, G.z_dim)), None)[:, 0].double().numpy()
    d = np.random.default_rng(0).normal(size=G.w_dim)
    (tmp_path / "s.csv").write_text("seed,score\n" + "".join(f"{s},{v!r}\n" for s, v in zip(seeds, (w @ d).tolist())))
    run = lambda *a: CliRunner().invoke(main, ["directions", *map(str, a)])  # noqa: E731
    r = run("interfacegan", "--network", net, "--scores", tmp_path / "s.csv", "--out", tmp_path / "r.direction")
    assert r.exit_code == 0, r.output
    r = run("interfacegan", "--network", net, "--scores", tmp_path / "s.csv", "--method", "svm",
            "--out", tmp_path / "svm.direction")
    assert r.exit_code == 0, r.output
    ridge, svm = load_direction(tmp_path / "r.direction"), load_direction(tmp_path / "svm.direction")
    assert ridge.params["estimator"] == "ridge" and "ratio" not in ridge.params
    assert svm.params["estimator"] == "svm" and svm.params["ratio"] == 0.02
    assert float(ridge.vectors[0].double() @ torch.from_numpy(d / np.linalg.norm(d))) > 0.99   # noise-free scores
    r = run("interfacegan", "--network", net, "--scores", tmp_path / "s.csv", "--ratio", "0.1",
            "--out", tmp_path / "x.direction")
    assert r.exit_code == 2 and "--ratio goes with --method svm" in r.output
    # compare: a labelled matrix, A's components in rows, B's in columns
    r = run("compare", tmp_path / "r.direction", tmp_path / "svm.direction")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"A = {tmp_path / 'r.direction'}, B = {tmp_path / 'svm.direction'}"
    assert lines[1].split() == ["cosine", "B0"] and lines[2].split()[0] == "A0"
    assert float(lines[2].split()[1]) == pytest.approx(cosine(ridge, svm), abs=1e-4)
    for sub in ("sefa", "ganspace", "interfacegan", "stylespace", "show", "compare"):
        text = run(sub, "--help").output
        assert "Examples:" in text, sub
        assert sub in ("show", "compare") or "stylegan2-256" in " ".join(text.split()), sub   # --network: what it takes
