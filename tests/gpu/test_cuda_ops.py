"""The fused CUDA ops on a real GPU: they build, and match the reference path run on the CPU.

    python3 -m pytest -q tests/gpu        (needs a CUDA build of torch, nvcc and a GPU)

The truth is the reference implementation evaluated on the CPU in float32 (float64 for the
gradient checks), so cuDNN/TF32 choices on the GPU cannot hide an error.
"""
from __future__ import annotations

import math

import pytest
import torch

import ops
from ops import _build, cuda_ops
from op_cases import FLR_CASES, UPFIRDN2D_KERNEL_CASES, random_filter

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEV = torch.device("cuda")


@pytest.fixture(scope="module", autouse=True)
def strict_gpu_maths():
    """No TF32 in the GPU-side convolutions of whole-network tests; every kernel built."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    tc = _build.toolchain()
    for name in _build.OPS:
        r = _build.build_op(name, tc=tc)
        assert r.status in ("built", "cached"), f"{name}: {r.reason}"
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _cpu(t):
    return t.detach().float().cpu()


def test_auto_picks_cuda_for_cuda_tensors(monkeypatch):
    monkeypatch.delenv("STYLEGAN_OPS_IMPL", raising=False)
    from ops._dispatch import choose_impl
    x = torch.zeros(1, device=DEV)
    assert choose_impl("auto", x, "bias_act") == "cuda"
    assert choose_impl("auto", x, "filtered_lrelu", "upfirdn2d") == "cuda"
    assert choose_impl("auto", x.cpu(), "bias_act") == "fast"


# ---------------------------------------------------------------- each op, forward and backward
@pytest.mark.parametrize("act", list(ops.ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_bias_act(act, dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 33, 17, 9, generator=g) * 3
    b = torch.randn(33, generator=g)
    dy = torch.randn(4, 33, 17, 9, generator=g)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-3, atol=4e-3)
    for clamp in (None, 1.5):
        xr, br = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
        yr = ops.bias_act(xr, br, act=act, clamp=clamp, impl="ref")
        gr = torch.autograd.grad(yr, (xr, br), dy)
        xc = x.to(DEV, dtype).requires_grad_(True)
        bc = b.to(DEV, dtype).requires_grad_(True)
        yc = ops.bias_act(xc, bc, act=act, clamp=clamp, impl="cuda")
        assert yc.dtype == dtype
        gc = torch.autograd.grad(yc, (xc, bc), dy.to(DEV, dtype))
        torch.testing.assert_close(_cpu(yc), yr.detach(), **tol)
        torch.testing.assert_close(_cpu(gc[0]), gr[0], **tol)
        torch.testing.assert_close(_cpu(gc[1]), gr[1], rtol=tol["rtol"] * 10, atol=tol["atol"] * 100)


@pytest.mark.parametrize("act", ["lrelu", "tanh", "swish", "softplus"])
def test_bias_act_second_order(act):
    x = torch.randn(2, 5, 6, 7, device=DEV, dtype=torch.float64)
    x = (x + 0.1 * torch.sign(x)).requires_grad_(True)
    b = torch.randn(5, device=DEV, dtype=torch.float64, requires_grad=True)
    fn = lambda x, b: ops.bias_act(x, b, act=act, clamp=10.0, impl="cuda")
    assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.parametrize("case", UPFIRDN2D_KERNEL_CASES, ids=[str(i) for i in range(len(UPFIRDN2D_KERNEL_CASES))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_upfirdn2d(case, dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 5, *case["hw"], generator=g)
    f = random_filter(case["f"], 5)
    f = f / f.sum()
    args = dict(up=case["up"], down=case["down"], padding=case["pad"], flip_filter=case["flip"], gain=case["gain"])
    xr = x.clone().requires_grad_(True)
    yr = ops.upfirdn2d(xr, f, impl="ref", **args)
    dy = torch.randn(yr.shape, generator=g)
    gr, = torch.autograd.grad(yr, xr, dy)
    xc = x.to(DEV, dtype).requires_grad_(True)
    yc = ops.upfirdn2d(xc, f.to(DEV), impl="cuda", **args)
    gc, = torch.autograd.grad(yc, xc, dy.to(DEV, dtype))
    tol = dict(rtol=1e-5, atol=2e-5) if dtype == torch.float32 else dict(rtol=3e-3, atol=1e-2)
    torch.testing.assert_close(_cpu(yc), yr.detach(), **tol)
    torch.testing.assert_close(_cpu(gc), gr, **tol)


@pytest.mark.parametrize("sep", [True, False])
def test_upfirdn2d_second_order(sep):
    x = torch.randn(2, 3, 9, 8, device=DEV, dtype=torch.float64, requires_grad=True)
    f = random_filter((4,) if sep else (3, 4), 7).to(DEV)
    assert torch.autograd.gradgradcheck(lambda x: ops.upfirdn2d(x, f, up=2, down=(1, 2), padding=(1, 2, 0, 3),
                                                                impl="cuda"), (x,))


@pytest.mark.parametrize("case", FLR_CASES, ids=[str(i) for i in range(len(FLR_CASES))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_filtered_lrelu(case, dtype):
    g = torch.Generator().manual_seed(13)
    x = torch.randn(3, 7, *case["hw"], generator=g)
    b = torch.randn(7, generator=g)
    fu = None if case["fu"] is None else case["fu"] / case["fu"].sum()
    fd = None if case["fd"] is None else case["fd"] / case["fd"].sum()
    args = (case["up"], case["down"], case["pad"], math.sqrt(2), 0.2, case["clamp"])
    xr, br = x.clone().requires_grad_(True), b.clone().requires_grad_(True)
    yr = ops.filtered_lrelu(xr, fu, fd, br, *args, impl="ref")
    dy = torch.randn(yr.shape, generator=g)
    gr = torch.autograd.grad(yr, (xr, br), dy)
    dev = lambda t: None if t is None else t.to(DEV)
    xc = x.to(DEV, dtype).requires_grad_(True)
    bc = b.to(DEV).requires_grad_(True)
    yc = ops.filtered_lrelu(xc, dev(fu), dev(fd), bc, *args, impl="cuda")
    gc = torch.autograd.grad(yc, (xc, bc), dy.to(DEV, dtype))
    tol = dict(rtol=1e-5, atol=3e-5) if dtype == torch.float32 else dict(rtol=5e-3, atol=2e-2)
    torch.testing.assert_close(_cpu(yc), yr.detach(), **tol)
    torch.testing.assert_close(_cpu(gc[0]), gr[0], **tol)
    torch.testing.assert_close(_cpu(gc[1]), gr[1], rtol=tol["rtol"] * 10, atol=tol["atol"] * 100)


def test_filtered_lrelu_many_planes_and_small_shared_memory():
    """More (n, c) planes than gridDim.y allows, and tiles shrunk to a few outputs each."""
    case = FLR_CASES[0]
    x = torch.randn(70000, 1, 8, 8)
    want = ops.filtered_lrelu(x, case["fu"], case["fd"], None, 2, 2, 10, impl="ref")
    got = ops.filtered_lrelu(x.to(DEV), case["fu"].to(DEV), case["fd"].to(DEV), None, 2, 2, 10, impl="cuda")
    torch.testing.assert_close(_cpu(got), want, rtol=1e-5, atol=3e-5)
    K = cuda_ops.kernels("filtered_lrelu", x.to(DEV))
    x = torch.randn(2, 3, 40, 37)
    want = ops.filtered_lrelu(x, case["fu"], case["fd"], None, 2, 2, 10, impl="ref")
    got = cuda_ops.filtered_lrelu(K, x.to(DEV), case["fu"].to(DEV), case["fd"].to(DEV), None, 2, 2, 10,
                                  math.sqrt(2), 0.2, None, False, max_smem=3000)
    torch.testing.assert_close(_cpu(got), want, rtol=1e-5, atol=3e-5)


# ---------------------------------------------------------------- whole networks
@pytest.mark.parametrize("name", ["sg3_t", "sg3_r", "sg2ada_skip", "sg2ada_resnet_cond", "sg3_sg2"])
def test_generator_fixture_through_cuda(name):
    import stylegan
    from conftest import load_npz, reference_path
    G = stylegan.load(reference_path(f"{name}.pkl"), device=DEV)["G_ema"].eval()
    npz = load_npz(name)
    z, c = torch.from_numpy(npz["z"]).to(DEV), torch.from_numpy(npz["c"]).to(DEV)
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.7, noise_mode="const")  # impl 'auto': the CUDA kernels
    torch.testing.assert_close(_cpu(img), torch.from_numpy(npz["img_psi0.7_const"]), rtol=0, atol=1e-4)


def test_fp16_generator_close_to_fp32():
    """num_fp16_res layers on the GPU: same image as the fp32 network up to half precision."""
    from stylegan.networks import create_model
    torch.manual_seed(0)
    G32 = create_model("stylegan2", z_dim=64, w_dim=64, c_dim=0, img_resolution=64, img_channels=3,
                       mapping_kwargs={"num_layers": 2},
                       synthesis_kwargs=dict(channel_base=1024, channel_max=64, num_fp16_res=0)).eval()
    G16 = create_model("stylegan2", z_dim=64, w_dim=64, c_dim=0, img_resolution=64, img_channels=3,
                       mapping_kwargs={"num_layers": 2},
                       synthesis_kwargs=dict(channel_base=1024, channel_max=64, num_fp16_res=2)).eval()
    G16.load_state_dict(G32.state_dict())
    z = torch.randn(8, 64)
    with torch.no_grad():
        a = G32.to(DEV)(z.to(DEV), None, noise_mode="const").float().cpu()
        b = G16.to(DEV)(z.to(DEV), None, noise_mode="const").float().cpu()
    assert (a - b).abs().mean() < 1e-2 and (a - b).abs().max() < 0.1
