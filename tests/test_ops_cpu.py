"""The compiled CPU filtered_lrelu kernel against numpy's upfirdn (float64), and the rules for when
it runs: inference only, one warning and the PyTorch path when it cannot be built."""
import warnings

import numpy as np
import pytest
import torch

import ops
from conftest import cpu_kernel, requires_cpu_kernels
from ops import _build, _cpu
from ops.filtered_lrelu import _filtered_lrelu_cpu, _filtered_lrelu_fast

from op_cases import flrelu_np

pytestmark = requires_cpu_kernels


@pytest.fixture(scope="module")
def kernel():
    return cpu_kernel("filtered_lrelu")


# (up, down, up taps, down taps, radial down filter, padding, clamp, slope, gain, flip, bias): SG3's own
# layer kinds (up 2/4, crops), ToRGB (slope 1, gain 1, one tap), and odd sizes and paddings.
CASES = [
    (2, 2, 12, 12, False, [9, 8, 9, 8], None, 0.2, 2 ** 0.5, False, True),
    (4, 2, 24, 12, False, [-6, -9, -6, -9], 256.0, 0.2, 2 ** 0.5, False, True),
    (2, 2, 12, 12, False, [-3, -4, -3, -4], 0.7, 0.2, 2 ** 0.5, False, True),
    (2, 2, 12, 12, True, [9, 8, 9, 8], None, 0.2, 2 ** 0.5, False, True),
    (4, 2, 24, 12, True, [-6, -9, -6, -9], None, 0.2, 2 ** 0.5, True, False),
    (1, 1, 1, 1, False, [0, 0, 0, 0], 0.5, 1.0, 1.0, False, True),
    (2, 1, 5, 3, False, [3, 1, 0, 4], None, 0.25, 1.4, True, True),
    (4, 4, 7, 9, True, [5, 2, 6, 3], 1.1, 0.1, 0.9, False, False),
    (3, 1, 8, 2, False, [2, 7, 4, 1], None, 0.3, 2.0, False, True),
    (6, 3, 13, 6, False, [-1, 4, 2, -2], None, 0.2, 1.3, True, True),
]


def _filters(g, ku, kd, radial):
    fu = torch.rand(ku, generator=g) + 0.1
    fd = torch.rand(kd, generator=g) + 0.1
    fu, fd = fu / fu.sum(), fd / fd.sum()
    if radial:
        fd = torch.outer(fd, torch.rand(kd, generator=g) + 0.1)  # any square 2-D filter
        fd = fd / fd.sum()
    return fu, fd


@pytest.mark.parametrize("case", CASES, ids=[f"up{c[0]}-down{c[1]}-{'2d' if c[4] else 'sep'}-{i}" for i, c in enumerate(CASES)])
def test_kernel_matches_numpy(kernel, case):
    up, down, ku, kd, radial, pad, clamp, slope, gain, flip, with_bias = case
    g = torch.Generator().manual_seed(sum(pad) + 31 * up + 7 * ku)
    x = torch.randn(2, 3, 21, 19, generator=g) * 2
    b = torch.randn(3, generator=g) if with_bias else None
    fu, fd = _filters(g, ku, kd, radial)
    got = _filtered_lrelu_cpu(kernel, x, fu, fd, b, up, down, pad, gain, slope, clamp, flip)
    fu_np, fd_np = fu.double().numpy(), fd.double().numpy()
    if flip:
        fu_np, fd_np = fu_np[::-1], fd_np[(slice(None, None, -1),) * fd_np.ndim]
    want = flrelu_np(x.double().numpy(), fu_np, fd_np, np.zeros(3) if b is None else b.double().numpy(),
                      up, down, pad, gain, slope, clamp)
    assert got.shape == want.shape
    # float32 sums of at most a few dozen terms: 1e-5 of the signal holds on any CPU.
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_kernel_strips_change_nothing(kernel):
    """Any strip height computes the same numbers (each output row's sums do not depend on it)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 4, 23, 17, generator=g)
    fu, fd = _filters(g, 12, 12, False)
    args = (x, torch.randn(4, generator=g), fu, fd, 2, 2, 9, 8, 9, 8, 0.2, -1.0)
    whole = kernel.filtered_lrelu(*args, 0)
    for rows in (1, 3, 7, 100):
        assert torch.equal(kernel.filtered_lrelu(*args, rows), whole)


def test_kernel_propagates_nan(kernel):
    """A NaN spreads over exactly the outputs whose support holds it, as in the reference."""
    x = torch.zeros(1, 1, 24, 24)
    x[0, 0, 12, 5] = float("nan")
    fu, fd = _filters(torch.Generator().manual_seed(0), 12, 12, False)
    kw = dict(up=2, down=2, padding=[9, 8, 9, 8], clamp=1.0)
    y = ops.filtered_lrelu(x, fu, fd, None, **kw)
    want = ops.filtered_lrelu(x, fu, fd, None, impl="ref", **kw)
    assert 0 < y.isnan().sum() < y.numel() and torch.equal(y.isnan(), want.isnan())


def test_inference_uses_kernel_and_training_keeps_gradients(kernel, monkeypatch):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 10, 10, generator=g)
    b = torch.randn(3, generator=g, requires_grad=True)
    fu, fd = _filters(g, 12, 12, False)
    kw = dict(up=2, down=2, padding=[9, 8, 9, 8], clamp=0.9)
    calls = []
    real = _cpu.load
    monkeypatch.setattr(_cpu, "load", lambda name: calls.append(name) or real(name))
    with torch.no_grad():
        y_inf = ops.filtered_lrelu(x, fu, fd, b, **kw)
    assert calls == ["filtered_lrelu"]
    # A bias that needs a gradient (x does not) must still get one: the PyTorch path runs.
    y = ops.filtered_lrelu(x, fu, fd, b, **kw)
    assert len(calls) == 1 and y.grad_fn is not None
    y.square().sum().backward()
    y_ref = ops.filtered_lrelu(x, fu, fd, b, impl="ref", **kw)
    b_grad = b.grad.clone()
    b.grad = None
    y_ref.square().sum().backward()
    torch.testing.assert_close(b_grad, b.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y_inf, y_ref.detach(), rtol=0, atol=1e-5)


def test_switched_off_or_unbuildable_falls_back(monkeypatch):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 9, 9, generator=g)
    fu, fd = _filters(g, 12, 12, False)
    kw = dict(up=2, down=2, padding=[9, 8, 9, 8], gain=1.4, slope=0.2, clamp=None, flip_filter=False)
    want = ops.filtered_lrelu(x, fu, fd, None, impl="ref", **kw)

    monkeypatch.setenv(_cpu.ENV_VAR, "0")
    monkeypatch.setattr(_cpu, "build", lambda name: pytest.fail("built although switched off"))
    torch.testing.assert_close(_filtered_lrelu_fast(x, fu, fd, None, **{k: kw[k] for k in kw}), want,
                               rtol=0, atol=1e-5)

    monkeypatch.delenv(_cpu.ENV_VAR)
    monkeypatch.undo()
    monkeypatch.setattr(_cpu, "problem", lambda: "no C++ compiler (c++) found. Fix: install g++")
    _build.reset()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(3):
                got = ops.filtered_lrelu(x, fu, fd, None, **kw)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        msgs = [str(w.message) for w in caught if issubclass(w.category, ops.OpsBuildWarning)]
        assert len(msgs) == 1 and "no C++ compiler" in msgs[0] and "PyTorch path" in msgs[0]
    finally:
        _build.reset()


def test_cache_key_follows_the_cpu(monkeypatch):
    """-march=native binaries are per kind of CPU: another instruction set means another build folder."""
    here = _cpu._key("filtered_lrelu")
    monkeypatch.setattr(_cpu, "isa_signature", lambda: "some-other-cpu")
    assert _cpu._key("filtered_lrelu") != here
