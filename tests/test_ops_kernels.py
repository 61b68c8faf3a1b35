"""The fused kernels' maths and autograd, on the CPU, against the reference ops.

`cpu_kernels.load()` compiles ops/cuda/cpu_check.cpp: the kernels' own host code (checks, output
sizes, tiling) and per-element/per-stage functions, run by loops instead of a CUDA grid. The
autograd of ops/cuda_ops.py runs over it exactly as it runs over the GPU build. What stays for a
GPU (tests/gpu) is the launch itself: grid sizes, barriers, shared memory limits.
"""
from __future__ import annotations

import math
import shutil

import pytest
import torch

import ops
from ops import cuda_ops
from op_cases import FLR_CASES, UPFIRDN2D_KERNEL_CASES, random_filter

pytestmark = pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="no C++ compiler to build the CPU emulation of the kernels")


# Fixtures K (the CPU build of the kernels) and emulated (impl='cuda' routed to it) are in conftest.py.


def _gain(act):
    return ops.ACTIVATIONS[act].def_gain


# ---------------------------------------------------------------- bias_act
@pytest.mark.parametrize("act", list(ops.ACTIVATIONS))
@pytest.mark.parametrize("layout", ["nchw", "channels_last", "2d"])
def test_bias_act_forward(K, act, layout):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 7, 6, generator=g) * 3 if layout != "2d" else torch.randn(9, 5, generator=g) * 3
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    b = torch.randn(5, generator=g)
    for bias, clamp, gain in [(None, None, None), (b, 0.7, None), (b, None, 0.5)]:
        want = ops.bias_act(x, bias, act=act, clamp=clamp, gain=gain, impl="ref")
        got = cuda_ops.bias_act(K.bias_act, x, bias, 1, act, ops.ACTIVATIONS[act].def_alpha,
                                _gain(act) if gain is None else gain, clamp)
        assert got.stride() == x.stride()
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def test_bias_act_other_dim_and_fp16(K):
    x = torch.randn(4, 3, 6, 5)
    b = torch.randn(5)
    want = ops.bias_act(x, b, dim=3, act="lrelu", clamp=1.0, impl="ref")
    torch.testing.assert_close(cuda_ops.bias_act(K.bias_act, x, b, 3, "lrelu", 0.2, math.sqrt(2), 1.0), want)
    # fp16 in, fp32 maths inside, fp16 out: within half precision of the fp32 reference.
    got = cuda_ops.bias_act(K.bias_act, x.half(), b.half(), 3, "lrelu", 0.2, math.sqrt(2), 1.0)
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("act", list(ops.ACTIVATIONS))
def test_bias_act_first_and_second_order(K, act):
    g = torch.Generator().manual_seed(2)
    # Keep away from kinks and clamp edges, where derivatives are one-sided.
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    x = x + 0.1 * torch.sign(x)
    b = torch.randn(3, generator=g, dtype=torch.float64) * 0.01
    x.requires_grad_(True)
    b.requires_grad_(True)
    clamp = 10.0
    fn = lambda x, b: cuda_ops.bias_act(K.bias_act, x, b, 1, act, 0.2, _gain(act), clamp)
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))
    # And the gradients equal the reference path's (same kink conventions).
    y_ref = ops.bias_act(x, b, act=act, alpha=0.2, clamp=clamp, impl="ref")
    y = fn(x, b)
    dy = torch.randn_like(y)
    want = torch.autograd.grad(y_ref, (x, b), dy)
    got = torch.autograd.grad(y, (x, b), dy)
    for w, o in zip(want, got):
        torch.testing.assert_close(o, w)


def test_bias_act_clamp_gradient_mask(K):
    x = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0], requires_grad=True)
    y = cuda_ops.bias_act(K.bias_act, x, None, 0, "linear", 0.0, 1.0, 1.0)
    y.sum().backward()
    assert y.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


# ---------------------------------------------------------------- upfirdn2d
@pytest.mark.parametrize("case", UPFIRDN2D_KERNEL_CASES, ids=[str(i) for i in range(len(UPFIRDN2D_KERNEL_CASES))])
def test_upfirdn2d_forward(K, case):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, *case["hw"], generator=g)
    f = random_filter(case["f"], 5)
    args = dict(up=case["up"], down=case["down"], padding=case["pad"], flip_filter=case["flip"], gain=case["gain"])
    want = ops.upfirdn2d(x, f, impl="ref", **args)
    got = cuda_ops.upfirdn2d(K.upfirdn2d, x, f, **args)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("sep", [True, False])
@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2, 0, 3)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 2, 0)),
                                         ((3, 2), (1, 2), (0, -1, 2, 3))])
def test_upfirdn2d_gradients(K, sep, up, down, pad):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(1, 2, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    f = random_filter((4,) if sep else (3, 4), 7)
    fn = lambda x: cuda_ops.upfirdn2d(K.upfirdn2d, x, f, up, down, pad, False, 1.7)
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_upfirdn2d_fp16(K):
    x = torch.randn(2, 4, 16, 16)
    f = ops.setup_filter([1, 3, 3, 1])
    want = ops.upsample2d(x, f, impl="ref")
    got = cuda_ops.upfirdn2d(K.upfirdn2d, x.half(), f, up=2, padding=[2, 1, 2, 1], gain=4)
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), want, rtol=2e-3, atol=2e-3)


# ---------------------------------------------------------------- filtered_lrelu
@pytest.mark.parametrize("case", FLR_CASES, ids=[str(i) for i in range(len(FLR_CASES))])
@pytest.mark.parametrize("max_smem", [1 << 30, 3000])  # one big tile, or many small ones
def test_filtered_lrelu_forward(K, case, max_smem):
    g = torch.Generator().manual_seed(13)
    x = torch.randn(2, 3, *case["hw"], generator=g)
    b = torch.randn(3, generator=g)
    args = (case["fu"], case["fd"], b, case["up"], case["down"], case["pad"], math.sqrt(2), 0.2, case["clamp"], False)
    want = ops.filtered_lrelu(x, *args, impl="ref")
    got = cuda_ops.filtered_lrelu(K, x, *args, max_smem=max_smem)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=2e-5)


def test_filtered_lrelu_flip_and_fp16(K):
    case = FLR_CASES[1]
    x = torch.randn(1, 3, *case["hw"])
    args = (case["fu"], case["fd"], None, case["up"], case["down"], case["pad"], 1.3, 0.1, case["clamp"], True)
    want = ops.filtered_lrelu(x, *args, impl="ref")
    torch.testing.assert_close(cuda_ops.filtered_lrelu(K, x, *args), want,
                               rtol=1e-5, atol=2e-5)
    got = cuda_ops.filtered_lrelu(K, x.half(), *args)
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), want, rtol=3e-3, atol=3e-3)


@pytest.mark.parametrize("i", [0, 1, 3, 5])
def test_filtered_lrelu_gradients(K, i):
    case = FLR_CASES[i]
    g = torch.Generator().manual_seed(14)
    x = torch.randn(1, 2, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: cuda_ops.filtered_lrelu(K, x, case["fu"], case["fd"], b,
                                              case["up"], case["down"], case["pad"], math.sqrt(2), 0.2,
                                              case["clamp"], False)
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))
    # Same gradients as the reference path, clamp mask included.
    y = fn(x, b)
    dy = torch.randn_like(y)
    y_ref = ops.filtered_lrelu(x, case["fu"], case["fd"], b, case["up"], case["down"], case["pad"],
                               clamp=case["clamp"], impl="ref")
    for w, o in zip(torch.autograd.grad(y_ref, (x, b), dy), torch.autograd.grad(y, (x, b), dy)):
        torch.testing.assert_close(o, w)


# ---------------------------------------------------------------- dispatch and whole networks
def test_public_ops_dispatch_to_kernels(emulated, monkeypatch):
    calls = []
    monkeypatch.setattr(cuda_ops, "kernels", lambda name, x: _Spy(emulated, calls))
    x = torch.randn(1, 2, 8, 8)
    f = ops.setup_filter([1, 3, 3, 1])
    with ops.use_impl("cuda"):
        ops.bias_act(x, act="lrelu")
        ops.upsample2d(x, f)
        ops.filtered_lrelu(x, f, f, up=2, down=2, padding=3)
    assert calls == ["bias_act", "upfirdn2d", "filtered_lrelu_plan", "filtered_lrelu"]
    calls.clear()
    ops.bias_act(x, act="lrelu")  # CPU tensor, no override: the fast path
    assert calls == []


class _Spy:
    def __init__(self, K, calls):
        self.K, self.calls = K, calls

    def __getattr__(self, name):
        def call(*args):
            self.calls.append(name)
            return getattr(self.K, name)(*args)
        return call


@pytest.mark.parametrize("name", ["sg3_t", "sg3_r", "sg2ada_skip", "sg2ada_resnet_cond"])
def test_generator_through_kernels_matches_fixture(emulated, name):
    from conftest import IMG_ATOL, fixture_model, load_npz
    G = fixture_model(name)["G_ema"].eval()
    npz = load_npz(name)
    z, c = torch.from_numpy(npz["z"]), torch.from_numpy(npz["c"])
    with torch.no_grad(), ops.use_impl("cuda"):
        img = G(z, c, truncation_psi=0.7, noise_mode="const")
    torch.testing.assert_close(img, torch.from_numpy(npz["img_psi0.7_const"]), rtol=0, atol=IMG_ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sg2ada_skip", "sg3_t"])
def test_discriminator_r1_through_kernels(emulated, name):
    """R1 needs the gradient of a gradient through bias_act and the downsampling upfirdn2d."""
    import stylegan
    from conftest import reference_path
    D = stylegan.load(reference_path(f"{name}.pkl"))["D"].eval().requires_grad_(True)
    img = torch.randn(2, D.img_channels, D.img_resolution, D.img_resolution)
    c = torch.eye(D.c_dim)[:2] if D.c_dim else torch.zeros(2, 0)

    def r1_grads(impl):
        D.zero_grad()
        x = img.clone().requires_grad_(True)
        with ops.use_impl(impl):
            logits = D(x, c)
            g, = torch.autograd.grad(logits.sum(), x, create_graph=True)
            g.square().sum().backward()
        return logits.detach(), {k: p.grad.clone() for k, p in D.named_parameters() if p.grad is not None}

    logits_ref, grads_ref = r1_grads("ref")
    logits, grads = r1_grads("cuda")
    torch.testing.assert_close(logits, logits_ref, rtol=1e-5, atol=1e-5)
    assert grads.keys() == grads_ref.keys() and len(grads) > 0
    for k in grads:
        torch.testing.assert_close(grads[k], grads_ref[k], rtol=1e-4, atol=1e-5, msg=k)
