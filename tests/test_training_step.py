"""Training arithmetic against NVIDIA's, replayed through our trainer and augment pipe with every random
draw NVIDIA's code made: four iterations of stylegan2-ada-pytorch's loop (reference `training_sg2ada32`)
and five of stylegan3's for a tiny conditional StyleGAN3-T with the blur fade-in, two-round gradient
accumulation and ADA moving p to its floor (tests/fixtures/training_sg3t32, see its .md).

Tolerances. One iteration is NVIDIA's arithmetic up to float32 summation order: losses and gradient
norms agree to ~1e-6 relative. Adam's first step with beta1 = 0 is lr * g / (|g| + eps): where a
gradient element sits near eps (1e-8), a last-bit difference in g moves the weight by a good part of lr.
NVIDIA's own code moves such D weights by up to 6.9e-5 between 1 and 2 threads (reference README), and
the next iterations carry those differences on: after four steps the losses agree to ~1e-5 and the few
ill-conditioned gradients (noise strengths, a small sum of large terms) to 10 %. So weights are held
to `rtol * scale` per tensor, with outliers allowed below lr / 30 on at most 0.5 % of elements, and the
later iterations' gradients by their overall norm. `python tests/test_training_step.py` prints the
measured agreement of every quantity."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]
from conftest import REPO, reference_path  # noqa: E402
from training_fixture import Recording, replay  # noqa: E402

from stylegan.training.augment import AugmentPipe  # noqa: E402
from stylegan.training.rng import Replay, ReplayMismatch  # noqa: E402

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")
SG3_PHASES = ("Gboth", "Dmain", "Dreg")
SG3 = REPO / "tests" / "fixtures" / "training_sg3t32"


@pytest.fixture(scope="module")
def rec():
    return Recording.load(reference_path("training_sg2ada32.npz").with_suffix(""))


@pytest.fixture(scope="module")
def run(rec):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)        # small tensors: one thread is fastest; the sums' order barely moves
    try:
        return replay(rec)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def rec3():
    return Recording.load(SG3)


@pytest.fixture(scope="module")
def run3(rec3):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return replay(rec3)
    finally:
        torch.set_num_threads(threads)


def diff(got, ref) -> tuple[float, float]:
    """(max |got - ref|, that / max |ref|)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if got.size == 0:
        return 0.0, 0.0
    d = float(np.abs(got - ref).max())
    return d, d / max(float(np.abs(ref).max()), 1e-30)


def losses(rec, run):
    """(key, ours, NVIDIA's) for every per-sample vector a phase reported."""
    out = []
    for key, ref in rec.npz.items():
        parts = key.split("/")
        if len(parts) > 2 and parts[0].startswith("it") and parts[2] == "Loss":
            got = run.reports.get((int(parts[0][2:]), parts[1], "/".join(parts[2:])))
            assert got is not None, f"{key} was not reported"
            out.append((key, torch.cat(got).numpy(), ref))
    return out


def grad_norms(rec, run, it, phase):
    """(ours, NVIDIA's, names): the float64 L2 norm of each parameter's gradient before the step (NaN: none)."""
    names = rec.meta["params"][phase[0]]
    grads = run.grads[(it, phase)]
    got = np.array([np.nan if grads[n] is None else np.linalg.norm(grads[n].double().numpy()) for n in names])
    return got, rec.npz[f"it{it}/{phase}/gradnorm"], names


def weights_after(rec, run, it):
    """(net, {tensor: (ours, NVIDIA's)}) of the weights recorded after iteration `it`."""
    for net in ("G", "D", "G_ema"):
        ref = rec.state(f"it{it}/{net}")
        if ref:
            state = run.states[it][net]
            yield net, {k: (state[k].numpy(), v.numpy()) for k, v in ref.items()}


def optimizer_after(rec, run, it, net):
    """{param/quantity: (ours, NVIDIA's)} of Adam's state after iteration `it`."""
    state = run.states[it][f"{net}_opt"]
    return {f"{n}/{k}": (state[n][k].numpy(), rec.npz[f"it{it}/{net}_opt/{n}/{k}"])
            for n in rec.meta["params"][net] for k in ("exp_avg", "exp_avg_sq", "step")}


def check_weights(pairs, rtol, atol_outlier, outlier_share=0.005):
    """Every tensor within rtol of its scale, but for a few elements (Adam near eps) within atol_outlier."""
    total = bad = 0
    for name, (got, ref) in pairs.items():
        scale = max(float(np.abs(ref).max()), 1e-3)
        err = np.abs(got.astype(np.float64) - ref)
        assert err.max() <= atol_outlier, f"{name}: {err.max():.3g} > {atol_outlier:.3g}"
        bad += int((err > rtol * scale).sum())
        total += err.size
    assert bad <= outlier_share * total, f"{bad} of {total} elements beyond rtol {rtol}"


# ----------------------------------------------------------------------------------------------


def test_augment_pipe_equals_nvidias_for_the_same_draws(rec):
    """Every recorded augment call (fakes and reals, all iterations): NVIDIA's images from NVIDIA's draws."""
    calls = rec.augment_calls()
    assert len(calls) == 13      # it0: Gmain, Dmain fakes and reals, Dreg; it1-3: Gmain, Dmain x2
    pipe = AugmentPipe(**{k: v for k, v in rec.settings["augment_kwargs"].items() if k != "class_name"})
    p = {0: rec.npz["init/augment_p"], **{i + 1: rec.npz[f"it{i}/augment_p"] for i in range(3)}}
    for key, source, expected, draws in calls:
        pipe.p.copy_(torch.from_numpy(np.asarray(p[int(key.split("/")[0][2:])])))
        source_ = Replay(draws)
        got = pipe(torch.from_numpy(source), rng=source_)
        assert source_.remaining == 0
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=2e-6, err_msg=key)
        assert np.abs(expected - source).max() > 0.1     # the augmentations did act


def test_replay_refuses_a_draw_in_another_order(rec):
    pipe = AugmentPipe(xflip=1, rotate90=1)
    draws = rec.augment_calls()[0][3]
    with pytest.raises(ReplayMismatch, match="asked for rand"):
        pipe(torch.zeros([4, 3, 32, 32]), rng=Replay([draws[6]] + draws))


def test_one_iteration_equals_nvidias(rec, run):
    """Iteration 0 (all four phases, lazy regularisation included): losses, every gradient, Adam's
    state and the weights after the steps, G_ema, pl_mean, ADA's p."""
    for key, got, ref in losses(rec, run):
        if key.startswith("it0/"):
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=key)
    for phase in PHASES:
        got, ref, names = grad_norms(rec, run, 0, phase)
        assert np.array_equal(np.isnan(got), np.isnan(ref)), phase    # the same parameters got a gradient
        np.testing.assert_allclose(got, ref, rtol=2e-5, err_msg=phase)
        for name in names:
            g = run.grads[(0, phase)][name]
            g_ref = rec.npz[f"it0/{phase}/grad/{name}"]
            d, r = diff(g.numpy(), g_ref)
            assert r < 1e-4, f"{phase} grad {name}: max abs {d:.3g}, rel {r:.3g}"
    lr = rec.meta["effective_optimizers"]["G"]["lr"]
    for net, pairs in weights_after(rec, run, 0):
        check_weights(pairs, rtol=1e-5, atol_outlier=lr / 30)
    for net in ("G", "D"):
        for name, (got, ref) in optimizer_after(rec, run, 0, net).items():
            if name.endswith("/step"):
                assert float(got) == float(ref), name          # zero gradients step too (stylegan2-ada's rule)
            else:
                d, r = diff(got, ref)
                assert r < 5e-5, f"{name}: max abs {d:.3g}, rel {r:.3g}"
    assert float(rec.npz["it0/pl_mean"]) != 0
    assert float(run.states[0]["G"]["mapping.w_avg"].abs().max()) > 0      # every G call moved w_avg


def test_four_iterations_follow_nvidias(rec, run):
    """All iterations: every draw used in order, losses, G_ema after each step, the final weights and
    optimiser states, pl_mean, the EMA beta and ADA's p after each adjustment."""
    assert run.rng.remaining == 0 and run.rng.label_position == len(rec.npz["np/label_randint"])
    for key, got, ref in losses(rec, run):
        np.testing.assert_allclose(got, ref, rtol=5e-5, atol=5e-6, err_msg=key)
    for it in range(4):
        for phase in PHASES + SG3_PHASES[:1]:
            if (it, phase) in run.grads:
                got, ref, _ = grad_norms(rec, run, it, phase)
                ok = ~np.isnan(ref)
                assert np.linalg.norm(got[ok] - ref[ok]) <= 1e-3 * np.linalg.norm(ref[ok]), (it, phase)
    lr = rec.meta["effective_optimizers"]["G"]["lr"]
    for net, pairs in weights_after(rec, run, 3):
        check_weights(pairs, rtol=2e-5, atol_outlier=lr / 30)
    for it in range(4):
        state = run.states[it]["G_ema"]
        check_weights({k: (state[k].numpy(), v.numpy()) for k, v in rec.state(f"it{it}/G_ema").items()}, 2e-5, lr / 30)
    for net in ("G", "D"):
        for name, (got, ref) in optimizer_after(rec, run, 3, net).items():
            d, r = diff(got, ref)
            assert name.endswith("exp_avg") or r < 1e-3, f"{name}: max abs {d:.3g}, rel {r:.3g}"
    np.testing.assert_allclose(float(run.trainer.loss.pl_mean), float(rec.npz["it3/pl_mean"]), rtol=1e-6)
    assert float(run.trainer.augment_pipe.p) == float(rec.npz["it3/augment_p"])
    assert run.trainer.last_ema_beta == float(rec.npz["it3/ema_beta"])


# ----------------------------------------------------------------------------------------------
# StyleGAN3-T (stylegan3's loop)


def test_stylegan3_blur_and_augment_equal_nvidias(rec3):
    """Iteration 0's eight augment calls (blur sigma 2 first, fakes and reals, two rounds per phase)."""
    calls = rec3.augment_calls()
    assert len(calls) == 8
    pipe = AugmentPipe(**{k: v for k, v in rec3.settings["augment_kwargs"].items() if k != "class_name"})
    pipe.p.copy_(torch.from_numpy(np.asarray(rec3.npz["init/augment_p"])))
    for key, source, expected, draws in calls:
        got = pipe(torch.from_numpy(np.ascontiguousarray(source)), rng=Replay(draws))
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=2e-6, err_msg=key)


def test_stylegan3_iterations_follow_nvidias(rec3, run3):
    """Five iterations (Gboth, Dmain, Dreg every 2; blur sigma 2 -> 0; labels of the fakes drawn): losses,
    gradients, weights and Adam after the first and last step, the running means, ADA's p at each step."""
    rec, run = rec3, run3
    assert run.rng.remaining == 0 and run.rng.label_position == len(rec.npz["np/label_randint"])
    for key, got, ref in losses(rec, run):
        tol = dict(rtol=1e-5, atol=1e-6) if key.startswith("it0/") else dict(rtol=5e-5, atol=5e-6)
        np.testing.assert_allclose(got, ref, err_msg=key, **tol)
    for it in range(5):
        for phase in SG3_PHASES:
            if (it, phase) in run.grads:
                got, ref, _ = grad_norms(rec, run, it, phase)
                assert np.array_equal(np.isnan(got), np.isnan(ref)), (it, phase)   # zero gradients, not none
                ok = ~np.isnan(ref)
                assert np.linalg.norm(got[ok] - ref[ok]) <= 1e-4 * np.linalg.norm(ref[ok]), (it, phase)
        assert run.states[it]["augment_p"] == float(rec.npz[f"it{it}/augment_p"]), it
        assert run.states[it]["ema_beta"] == float(rec.npz[f"it{it}/ema_beta"]), it
        for name, ref in rec.state(f"it{it}/G_ema").items():
            if name.endswith(("magnitude_ema", "w_avg")):
                np.testing.assert_allclose(run.states[it]["G_ema"][name].numpy(), ref.numpy(), rtol=1e-5, atol=1e-7,
                                           err_msg=f"it{it} {name}")
    assert [run.states[i]["augment_p"] for i in range(5)] == pytest.approx([0.16, 0.12, 0.08, 0.04, 0.0])
    lr = rec.meta["effective_optimizers"]["G"]["lr"]
    for net, pairs in weights_after(rec, run, 0):
        check_weights(pairs, rtol=1e-5, atol_outlier=lr / 30)
    assert all(torch.equal(run.states[0]["G"][k], v) for k, v in run.states[0]["G_ema"].items())   # beta 0
    for net, pairs in weights_after(rec, run, 4):
        check_weights(pairs, rtol=2e-5, atol_outlier=lr / 30)
    for net in ("G", "D"):
        for name, (got, ref) in optimizer_after(rec, run, 4, net).items():
            d, r = diff(got, ref)
            assert r < 1e-3 or name.endswith("/exp_avg") and r < 0.1, f"{name}: max abs {d:.3g}, rel {r:.3g}"


# ----------------------------------------------------------------------------------------------


def worst(pairs) -> tuple[float, float]:
    """(largest max abs, largest max rel) over tensors."""
    ds = [diff(g, r) for g, r in pairs]
    return max(d for d, _ in ds), max(r for _, r in ds)


def measure(rec, run) -> list[tuple[str, float, float]]:
    """(quantity, max abs, max rel) of every recorded quantity; rel is per tensor, against its max |value|."""
    rows = []
    for it in range(rec.settings["iters"]):
        rows.append((f"it{it} losses (all Loss/* vectors)",
                     *worst((g, r) for k, g, r in losses(rec, run) if k.startswith(f"it{it}/"))))
        for phase in PHASES + SG3_PHASES[:1]:
            if (it, phase) in run.grads:
                got, ref, _ = grad_norms(rec, run, it, phase)
                ok = ~np.isnan(ref)
                rel = np.abs(got[ok] - ref[ok]) / np.maximum(ref[ok], 1e-30)
                rows.append((f"it{it} {phase} gradient norms (worst parameter)", float(np.abs(got[ok] - ref[ok]).max()),
                             float(rel.max())))
                if it == 0 and f"it0/{phase}/grad/{rec.meta['params'][phase[0]][0]}" in rec.npz:
                    w = worst((run.grads[(0, phase)][n].numpy(), rec.npz[f"it0/{phase}/grad/{n}"])
                              for n in rec.meta["params"][phase[0]])
                    rows.append((f"it0 {phase} gradients (worst tensor)", *w))
        for net, pairs in weights_after(rec, run, it):
            rows.append((f"it{it} {net} weights (worst tensor)", *worst(pairs.values())))
        for net in ("G", "D"):
            if f"it{it}/{net}_opt/{rec.meta['params'][net][0]}/step" in rec.npz:
                for k in ("exp_avg", "exp_avg_sq"):
                    pairs = [v for n, v in optimizer_after(rec, run, it, net).items() if n.endswith("/" + k)]
                    rows.append((f"it{it} {net} Adam {k} (worst tensor)", *worst(pairs)))
    last = rec.settings["iters"] - 1
    if f"it{last}/pl_mean" in rec.npz:
        rows.append((f"pl_mean after it{last}", *diff(run.states[last]["pl_mean"], float(rec.npz[f"it{last}/pl_mean"]))))
    p = [(run.states[i]["augment_p"], float(rec.npz[f"it{i}/augment_p"])) for i in range(last + 1)]
    rows.append(("augment p after each iteration", *worst(([a], [b]) for a, b in p)))
    return rows


if __name__ == "__main__":
    from conftest import REFERENCE_DIR
    torch.set_num_threads(1)
    for path in (REFERENCE_DIR / "training_sg2ada32", SG3):
        print(path.name)
        r = Recording.load(path)
        for q, a, rel in measure(r, replay(r)):
            print(f"  {q:50s} max abs {a:9.3g}   max rel {rel:9.3g}")
