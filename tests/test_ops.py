"""Ops against independent truths (scipy/numpy/closed forms), fast == ref, and gradients."""
import importlib
import math

import numpy as np
import pytest
import torch

import ops
from ops.upfirdn2d import _upfirdn2d_ref
from ops import upfirdn2d_fast

from op_cases import flrelu_np, np_upfirdn2d, upfirdn2d_cases


CASES = list(upfirdn2d_cases(80, seed=1234))


@pytest.mark.parametrize("case", CASES)
def test_upfirdn2d_vs_scipy_and_fast_eq_ref(case):
    g = torch.Generator().manual_seed(hash(str(case)) % 2**31)
    x = torch.randn(2, 3, *case["hw"], generator=g)
    f = torch.randn(*case["f"], generator=g)
    args = (case["up"], case["down"], case["pad"], case["flip"], case["gain"])
    ref = _upfirdn2d_ref(x, f, *args)
    fast = upfirdn2d_fast.upfirdn2d(x, f, *args)
    truth = np_upfirdn2d(x.double().numpy(), f.double().numpy(), *args)
    (upx, upy), (downx, downy), (px0, px1, py0, py1) = case["up"], case["down"], case["pad"]
    kw, kh = case["f"][-1], case["f"][0]
    assert ref.shape == (2, 3, (case["hw"][0] * upy + py0 + py1 - kh + downy) // downy,
                         (case["hw"][1] * upx + px0 + px1 - kw + downx) // downx)
    assert truth.shape == tuple(ref.shape)
    scale = max(1.0, float(np.abs(truth).max()))
    np.testing.assert_allclose(ref.double().numpy(), truth, atol=2e-5 * scale, rtol=0)
    np.testing.assert_allclose(fast.double().numpy(), truth, atol=2e-5 * scale, rtol=0)
    xd, fd_ = x.double(), f
    assert torch.allclose(upfirdn2d_fast.upfirdn2d(xd, fd_, *args), _upfirdn2d_ref(xd, fd_, *args), atol=1e-12)


def test_upfirdn2d_sizes_from_docstring_helpers():
    x = torch.randn(1, 2, 10, 13)
    for f in [ops.setup_filter([1, 3, 3, 1]), ops.setup_filter(torch.rand(12).tolist())]:
        for impl in ("ref", "fast"):
            assert ops.upsample2d(x, f, up=2, impl=impl).shape == (1, 2, 20, 26)
            assert ops.downsample2d(x, f, down=2, impl=impl).shape == (1, 2, 5, 6)
            assert ops.filter2d(x, f, padding=1, impl=impl).shape == (1, 2, 12, 15)


def test_use_impl_switch(monkeypatch):
    from ops._dispatch import choose_impl
    x = torch.zeros(1)
    monkeypatch.delenv("STYLEGAN_OPS_IMPL", raising=False)
    assert choose_impl("auto", x) == "fast"
    with ops.use_impl("ref"):
        assert choose_impl("auto", x) == "ref"
        assert choose_impl("fast", x) == "fast"
        with ops.use_impl("fast"):
            assert choose_impl("auto", x) == "fast"
        assert choose_impl("auto", x) == "ref"
    monkeypatch.setenv("STYLEGAN_OPS_IMPL", "ref")
    assert choose_impl("auto", x) == "ref"
    with pytest.raises(ValueError):
        with ops.use_impl("nope"):
            pass


CLOSED = {
    "linear": lambda v, a: v, "relu": lambda v, a: np.maximum(v, 0), "lrelu": lambda v, a: np.where(v >= 0, v, v * a),
    "tanh": lambda v, a: np.tanh(v), "sigmoid": lambda v, a: 1 / (1 + np.exp(-v)),
    "elu": lambda v, a: np.where(v >= 0, v, np.exp(v) - 1),
    "selu": lambda v, a: 1.0507009873554805 * np.where(v >= 0, v, 1.6732632423543772 * (np.exp(v) - 1)),
    "softplus": lambda v, a: np.log1p(np.exp(v)), "swish": lambda v, a: v / (1 + np.exp(-v)),
}
DEF_GAIN = {"relu": math.sqrt(2), "lrelu": math.sqrt(2), "swish": math.sqrt(2)}


@pytest.fixture(params=["ref", "fast", "cuda"])
def bias_act_impl(request):
    """The three bias_act codes: torch's elementwise ops, the same steps in place ('fast' without
    gradients), and the fused kernel's maths, built for the CPU (skipped without a C++ compiler)."""
    if request.param == "cuda":
        request.getfixturevalue("emulated")
    return request.param


@pytest.mark.parametrize("act", sorted(CLOSED))
def test_bias_act_closed_form(act, bias_act_impl, monkeypatch):
    assert set(CLOSED) == set(ops.ACTIVATIONS)
    impl = bias_act_impl
    if impl == "fast":   # the fast path's own arithmetic, not the reference's under its name
        module = importlib.import_module("ops.bias_act")   # `ops.bias_act` is the function
        monkeypatch.setattr(module, "_bias_act_ref", lambda *a: pytest.fail("'fast' ran the reference"))
    x = torch.randn(3, 5, 4, dtype=torch.float64) * 3
    b = torch.randn(5, dtype=torch.float64)
    v = x.numpy() + b.numpy()[None, :, None]
    want = CLOSED[act](v, 0.2) * DEF_GAIN.get(act, 1.0)
    np.testing.assert_allclose(ops.bias_act(x, b, act=act, impl=impl).numpy(), want, rtol=1e-10, atol=1e-12)
    want = np.clip(CLOSED[act](v, 0.3) * 1.7, -0.5, 0.5)
    got = ops.bias_act(x, b, act=act, alpha=0.3, gain=1.7, clamp=0.5, impl=impl).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    bt = torch.randn(4, dtype=torch.float64)
    np.testing.assert_allclose(ops.bias_act(x, bt, dim=2, act=act, impl=impl).numpy(),
                               CLOSED[act](x.numpy() + bt.numpy(), 0.2) * DEF_GAIN.get(act, 1.0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("act", ["linear", "lrelu", "tanh"])
def test_bias_act_inplace_overwrites_only_when_allowed(act):
    """inplace=True: the closed form's values, written into x when nothing needs gradients; x is
    left alone when it does (the reference path, with its graph)."""
    x0 = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    want = np.clip(CLOSED[act](x0.numpy() + b.numpy()[None, :, None, None], 0.2) * 1.3, -0.9, 0.9)
    with torch.no_grad():
        x = x0.clone()
        y = ops.bias_act(x, b, act=act, gain=1.3, clamp=0.9, impl="fast", inplace=True)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)
    assert y.data_ptr() == x.data_ptr()   # every activation's in-place form reuses x's storage
    x = x0.clone().requires_grad_()
    y = ops.bias_act(x, b, act=act, gain=1.3, clamp=0.9, impl="fast", inplace=True)
    assert torch.equal(x.detach(), x0) and y.grad_fn is not None
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("up,down,sep,clamp", [(2, 2, True, 0.3), (4, 2, True, None), (1, 1, False, None),
                                                (2, 1, False, 0.5), (1, 2, True, None)])
def test_filtered_lrelu(up, down, sep, clamp):
    g = torch.Generator().manual_seed(up * 10 + down)
    x = torch.randn(2, 3, 9, 7, generator=g, dtype=torch.float64)
    taps = 12 if sep else 4
    fu = ops.setup_filter(torch.rand(taps, generator=g) + 0.1, separable=sep)
    fd = ops.setup_filter(torch.rand(taps, generator=g) + 0.1, separable=sep)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    pad = [12, 13, 11, 14]  # room for both 12-tap filters at up=1
    want = flrelu_np(x.numpy(), fu.double().numpy(), fd.double().numpy(), b.numpy(), up, down, pad, 1.4, 0.25, clamp)
    by_hand = ops.upfirdn2d(ops.bias_act(ops.upfirdn2d(ops.bias_act(x, b, impl="ref"), fu, up=up, padding=pad, gain=up ** 2,
                                                       impl="ref"), act="lrelu", alpha=0.25, gain=1.4, clamp=clamp, impl="ref"),
                            fd, down=down, impl="ref")
    for impl in ("ref", "fast"):
        got = ops.filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=pad, gain=1.4, slope=0.25, clamp=clamp, impl=impl)
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got.numpy(), by_hand.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("up,down,k", [(1, 1, 3), (2, 1, 3), (1, 2, 3), (1, 2, 1), (2, 1, 1)])
def test_conv2d_resample_vs_zero_stuff(up, down, k):
    g = torch.Generator().manual_seed(up + 3 * down + 7 * k)
    x = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    w = torch.randn(5, 4, k, k, generator=g, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1])
    for impl in ("ref", "fast"):
        got = ops.conv2d_resample(x, w, f, up=up, down=down, padding=k // 2, impl=impl).numpy()
        # Truth: all padding up front (on the upsampled grid), zero-stuff + FIR filter in numpy,
        # plain valid correlation, then decimation (filter and conv commute, both being LTI).
        fn = f.double().numpy() if up > 1 or down > 1 else np.ones((1, 1))  # f unused without resampling
        p = k // 2
        p0, p1 = p, p
        if up > 1:
            p0, p1 = p0 + (4 + up - 1) // 2, p1 + (4 - up) // 2
        if down > 1:
            p0, p1 = p0 + (4 - down + 1) // 2, p1 + (4 - down) // 2
        y = np_upfirdn2d(x.numpy(), fn, (up, up), (1, 1), (p0, p1, p0, p1), False, up ** 2)
        out = np.zeros((2, 5, y.shape[2] - k + 1, y.shape[3] - k + 1))
        for i in range(k):
            for j in range(k):
                out += np.einsum("nchw,oc->nohw", y[:, :, i:i + out.shape[2], j:j + out.shape[3]], w.numpy()[:, :, i, j])
        out = out[:, :, ::down, ::down]
        assert got.shape == (2, 5, 8 * up // down, 8 * up // down)
        np.testing.assert_allclose(got, out, rtol=1e-9, atol=1e-9)


def _modconv_loop(x, w, s, f, up, down, demod):
    """Per sample: modulate (and demodulate) the weight, then convolve: the definition itself."""
    out = []
    for i in range(x.shape[0]):
        wi = w * s[i].reshape(1, -1, 1, 1)
        if demod:
            wi = wi / (wi.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        out.append(ops.conv2d_resample(x[i:i + 1], wi, f, up=up, down=down, padding=1, impl="ref"))
    return torch.cat(out)


# Batch 1 at 8x8 folds the styles and demodulation into the weight (the smaller tensor), batch 1 at
# 2x2 scales the activations instead, batch 3 shares the weight across samples.
@pytest.mark.parametrize("n,hw", [(1, 8), (1, 2), (3, 8)])
@pytest.mark.parametrize("up,down,demod", [(1, 1, True), (2, 1, True), (1, 2, False)])
def test_modulated_conv2d(n, hw, up, down, demod):
    g = torch.Generator().manual_seed(up * 5 + down)
    x = torch.randn(n, 4, hw, hw, generator=g, dtype=torch.float64)
    w = torch.randn(6, 4, 3, 3, generator=g, dtype=torch.float64)
    s = torch.randn(n, 4, generator=g, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1])
    kw = dict(up=up, down=down, padding=1, resample_filter=f, demodulate=demod)
    loop = _modconv_loop(x, w, s, f, up, down, demod)
    noise = torch.randn(n, 1, *loop.shape[2:], generator=g, dtype=torch.float64)
    for impl in ("ref", "fast"):
        for fused in (True, False):
            got = ops.modulated_conv2d(x, w, s, fused_modconv=fused, impl=impl, **kw)
            assert torch.allclose(got, loop, rtol=1e-10, atol=1e-10), (impl, fused)
            # Noise lands in the fast path's output in place (no gradients here): same sum.
            got = ops.modulated_conv2d(x, w, s, noise=noise, fused_modconv=fused, impl=impl, **kw)
            assert torch.allclose(got, loop + noise, rtol=1e-10, atol=1e-10), (impl, fused)


def test_modulated_conv2d_fast_sees_in_place_weight_updates():
    """The fast path caches what it derives from a weight; an optimiser step (in place) must show."""
    g = torch.Generator().manual_seed(3)
    x, s = torch.randn(2, 4, 6, 6, generator=g), torch.randn(2, 4, generator=g)
    w = torch.nn.Parameter(torch.randn(5, 4, 3, 3, generator=g), requires_grad=False)
    f = ops.setup_filter([1, 3, 3, 1])
    for up in (1, 2):
        before = ops.modulated_conv2d(x, w, s, up=up, padding=1, resample_filter=f, impl="fast")
        torch.testing.assert_close(before, _modconv_loop(x, w, s, f, up, 1, True), rtol=1e-5, atol=1e-5)
        with torch.no_grad():
            w[0].mul_(-3.0)
        after = ops.modulated_conv2d(x, w, s, up=up, padding=1, resample_filter=f, impl="fast")
        torch.testing.assert_close(after, _modconv_loop(x, w, s, f, up, 1, True), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(before, after)


@pytest.mark.slow
@pytest.mark.parametrize("weight_grad", [False, True])
@pytest.mark.parametrize("n", [1, 2])
def test_modulated_conv2d_fast_gradcheck(weight_grad, n):
    """Gradients to x and styles (projection: frozen, cached weight) and to the weight (training)."""
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 3, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.randn(n, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=weight_grad)
    f = ops.setup_filter([1, 3, 3, 1])
    fn = lambda x, s, w: ops.modulated_conv2d(x, w, s, up=2, padding=1, resample_filter=f, impl="fast")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, s, w))


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("sep,up,down,pad", [(True, 2, 1, [2, 1, 3, 0]), (False, 1, 2, [1, 2, 0, 1]),
                                             (True, 3, 2, [-1, 2, 1, 1]), (False, 2, 1, [1, 1, 1, 1])])
def test_upfirdn2d_gradcheck(impl, sep, up, down, pad):
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    f = torch.rand(5) if sep else torch.rand(3, 4)
    fn = lambda x: ops.upfirdn2d(x, f, up=up, down=down, padding=pad, gain=1.5, impl=impl)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("act", ["lrelu", "tanh", "swish", "elu"])
def test_bias_act_gradcheck(act):
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: ops.bias_act(x + 0.05 * torch.sign(x), b, act=act, gain=1.3)  # keep away from the kink
    assert torch.autograd.gradcheck(fn, (x, b))
    if act != "lrelu":
        assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_filtered_lrelu_gradcheck(impl):
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    fu, fd = ops.setup_filter([1, 3, 3, 1]), ops.setup_filter([1, 2, 1])
    fn = lambda x, b: ops.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=3, clamp=0.8, impl=impl)
    assert torch.autograd.gradcheck(fn, (x, b), atol=1e-5)


@pytest.mark.parametrize("act,clamp", [("lrelu", None), ("lrelu", 0.4), ("relu", 0.4), ("linear", 0.3), ("linear", None)])
def test_bias_act_with_gradients_keeps_only_its_output(act, clamp):
    """The fast path's gradients equal the reference's bit for bit, though it saves the output alone."""
    g = torch.Generator().manual_seed(3)
    x0, b0 = torch.randn(2, 5, 6, 7, generator=g), torch.randn(5, generator=g)
    grad = torch.randn(2, 5, 6, 7, generator=g)
    results = {}
    for impl in ("ref", "fast"):
        x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            y = ops.bias_act(x, b, act=act, clamp=clamp, impl=impl)
        results[impl] = (y, *torch.autograd.grad(y, [x, b], grad))
        if impl == "fast":
            assert [t.data_ptr() for t in saved if t.numel() > 5] == [y.data_ptr()]
    for a, c in zip(results["ref"], results["fast"]):
        assert torch.equal(a, c)


def test_scale_channels_gradient_without_a_full_size_product():
    """x * s[n, c]: the same gradients as autograd's product, however finely the sum is chunked."""
    from ops._util import channel_dot, scale_channels
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 13, 7, generator=g, dtype=torch.float64).requires_grad_(True)
    s = torch.randn(2, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    grad = torch.randn(2, 3, 13, 7, generator=g, dtype=torch.float64)
    got = torch.autograd.grad(scale_channels(x, s), [x, s], grad)
    want = torch.autograd.grad(x * s[:, :, None, None], [x, s], grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for chunk_bytes in (1, 2 * 3 * 7 * 8 * 4, 1 << 30):   # a row, 4 rows (13 is not a multiple), all
        torch.testing.assert_close(channel_dot(grad, x, chunk_bytes), (grad * x).sum((2, 3)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act,clamp", [("lrelu", None), ("lrelu", 1.5), ("relu", 1.5), ("linear", 0.7)])
def test_bias_act_second_derivative_matches_the_reference(act, clamp):
    """Gradient penalties (R1, path length) differentiate the backward: the fast path's must be
    differentiable and give the reference's numbers."""
    g = torch.Generator().manual_seed(9)
    x0, b0 = torch.randn(2, 4, 5, 5, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    results = []
    for impl in ("ref", "fast"):
        x, b = x0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = ops.bias_act(x * x, b, act=act, clamp=clamp, impl=impl)
        gx, gb = torch.autograd.grad((y * y).sum(), [x, b], create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum() + gb.square().sum(), [x, b]))
    for a, c in zip(*results):
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)
