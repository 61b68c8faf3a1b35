"""The Winograd F(2x2, 3x3) CPU kernel against float64 convolution, its gradient, its weight cache,
and when the modulated convolution uses it."""
import pytest
import torch
import torch.nn.functional as F

import ops
from conftest import cpu_kernel, requires_cpu_kernels
from ops import _cpu, conv3x3

pytestmark = requires_cpu_kernels


@pytest.fixture(scope="module")
def kernel():
    return cpu_kernel("conv3x3")


def _inputs(n, c, k, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(k, c, 3, 3, generator=g) / (9 * c) ** 0.5
    return g, x, weight


def _error(got, want):
    return ((got.double() - want).abs().max() / want.abs().max()).item()


# (N, C, K, H, W, per-sample noise): odd sizes cut the last 2x2 tiles; a batch spans tile blocks;
# StyleGAN2's 4x4 and 8x8 layers, and a plane smaller than a tile's input.
SHAPES = [(2, 16, 32, 17, 19, True), (1, 32, 48, 16, 16, False), (3, 64, 16, 23, 16, True), (1, 128, 128, 40, 36, False),
          (1, 256, 256, 4, 4, False), (2, 64, 32, 8, 8, True), (1, 16, 16, 3, 5, False)]


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{s[0]}x{s[1]}to{s[2]}@{s[3]}x{s[4]}" for s in SHAPES])
@pytest.mark.parametrize("flip_weight", [True, False])
def test_matches_float64_as_closely_as_a_direct_convolution(kernel, shape, flip_weight):
    n, c, k, h, w, per_sample = shape
    g, x, weight = _inputs(n, c, k, h, w, seed=h * w + c)
    s_in, s_out = torch.rand(n, c, generator=g) + 0.5, torch.rand(n, k, generator=g) + 0.5
    noise = torch.randn(n if per_sample else 1, 1, h, w, generator=g)
    with torch.no_grad():
        got = conv3x3.conv3x3(x, weight, s_in, s_out, noise, flip_weight)
        want = conv3x3.reference(x.double(), weight.double(), s_in.double(), s_out.double(), noise.double(), flip_weight)
        direct = conv3x3.reference(x, weight, s_in, s_out, noise, flip_weight)
    assert got.shape == want.shape and got.is_contiguous(memory_format=torch.channels_last)
    # F(2x2, 3x3)'s transforms hold only 0, +-1, 1/2: it rounds like a direct float32 convolution.
    assert _error(got, want) <= max(2 * _error(direct, want), 1e-6)


def test_any_tile_block_gives_the_same_numbers(kernel):
    _, x, weight = _inputs(2, 16, 16, 21, 18)
    u = kernel.pack(conv3x3.transform_weight(weight))
    e = torch.empty(0)
    whole = kernel.conv3x3(x, u, e, e, e, 0)
    for block in (6, 12, 30):
        assert torch.equal(kernel.conv3x3(x, u, e, e, e, block), whole)


def test_gradient_to_input_scales_and_noise(kernel):
    """Projection's case: the weight is fixed, x, the styles and the noise are optimised."""
    g, x, weight = _inputs(2, 16, 32, 18, 17)
    s = (torch.rand(2, 16, generator=g) + 0.5).requires_grad_(True)
    noise = torch.randn(2, 1, 18, 17, generator=g).requires_grad_(True)
    x.requires_grad_(True)
    grad = torch.randn(2, 32, 18, 17, generator=g)
    d = lambda s: (s.square() @ weight.square().sum([2, 3]).t() + 1e-8).rsqrt()  # noqa: E731  demodulation

    got = torch.autograd.grad(conv3x3.conv3x3(x, weight, s, d(s), noise), [x, s, noise], grad)
    xs, ss, ns = (t.detach().double().requires_grad_(True) for t in (x, s, noise))
    out = conv3x3.reference(xs, weight.double(), ss, (ss.square() @ weight.double().square().sum([2, 3]).t() + 1e-8).rsqrt(), ns)
    want = torch.autograd.grad(out, [xs, ss, ns], grad.double())
    for a, b in zip(got, want):
        assert _error(a, b) < 1e-5


def test_weight_change_invalidates_the_cached_transform(kernel):
    _, x, weight = _inputs(1, 16, 16, 16, 16)
    weight = torch.nn.Parameter(weight)
    with torch.no_grad():
        first = conv3x3.conv3x3(x, weight)
        weight.mul_(-2)   # an optimiser step
        second = conv3x3.conv3x3(x, weight)
        assert _error(second, conv3x3.reference(x.double(), weight.double())) < 1e-6
    assert torch.allclose(second, -2 * first, atol=1e-5)


def test_applies_only_to_what_it_computes(kernel):
    _, x, weight = _inputs(1, 16, 16, 16, 16)
    assert conv3x3.applies(x, weight)
    assert not conv3x3.applies(x, weight, up=2)
    assert not conv3x3.applies(x.double(), weight.double())
    assert not conv3x3.applies(x[:, :12], weight[:, :12])                        # channels off the vector width
    assert not conv3x3.applies(x, torch.nn.Parameter(weight))                    # training: weight gradients


@pytest.mark.parametrize("mode", ["inference", "projection", "training", "switched off"])
def test_modulated_conv_takes_the_kernel_when_it_applies(kernel, monkeypatch, mode):
    calls = []
    real = conv3x3._run
    monkeypatch.setattr(conv3x3, "_run", lambda *a, **k: calls.append(1) or real(*a, **k))
    if mode == "switched off":
        monkeypatch.setenv(_cpu.ENV_VAR, "0")
    g, x, weight = _inputs(2, 16, 32, 16, 16)
    weight = torch.nn.Parameter(weight, requires_grad=mode == "training")
    styles = (torch.rand(2, 16, generator=g) + 0.5).requires_grad_(mode == "projection")
    noise = torch.randn(2, 1, 16, 16, generator=g)
    backward = mode in ("projection", "training")
    with torch.set_grad_enabled(backward):
        got = ops.modulated_conv2d(x, weight, styles, noise=noise, padding=1, impl="fast")
        if backward:
            got.sum().backward()
    with ops.use_impl("ref"), torch.no_grad():
        want = ops.modulated_conv2d(x.double(), weight.double(), styles.double(), noise=noise.double(), padding=1)
    assert _error(got, want) < 1e-6
    assert len(calls) == {"inference": 1, "projection": 2, "training": 0, "switched off": 0}[mode]
