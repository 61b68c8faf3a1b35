"""bf16 synthesis on the CPU (opt-in: `G(z, c, dtype=torch.bfloat16)`) against float32.

Tolerance, from measured drift: the RMS of (bf16 image - float32 image) is 0.8-1.0% of the float32
image's RMS for stylegan2-256/1024 and 1.2% for stylegan3-t-256 (benchmarks/bf16.py, 8 seeds), and
0.8-1.6% on the small networks below over a batch of 4 seeds (at most 2.9% for a single seed of 20).
IMG_REL = 4% holds that with margin, while a fault (a lost bias, a wrong filter or demodulation) is
off by tens of percent. Single ops round their input and output once: OP_REL = 1% (2^-8 is 0.4%)."""
from __future__ import annotations

import pytest
import torch

import ops
from ops import _cpu
from stylegan.networks import create_model, stylegan2, stylegan3
from stylegan.networks.layers import use_bf16

IMG_REL = 0.04
OP_REL = 0.01

_SG2 = dict(z_dim=64, w_dim=64, c_dim=0, img_resolution=32, img_channels=3, mapping_kwargs={"num_layers": 2},
            synthesis_kwargs={"channel_base": 512, "channel_max": 64, "conv_clamp": 256})
_SG3 = dict(z_dim=64, w_dim=64, c_dim=0, img_resolution=32, img_channels=3, mapping_kwargs={"num_layers": 2},
            channel_base=512, channel_max=32)
NETS = {
    "sg2-skip": ("stylegan2", _SG2),
    "sg2-resnet-cond": ("stylegan2", {**_SG2, "c_dim": 5,
                                      "synthesis_kwargs": {**_SG2["synthesis_kwargs"], "architecture": "resnet"}}),
    "sg2-orig": ("stylegan2", {**_SG2, "synthesis_kwargs": {**_SG2["synthesis_kwargs"], "architecture": "orig"}}),
    "sg3-t": ("stylegan3", _SG3),
    "sg3-r": ("stylegan3", {**_SG3, "channel_base": 1024, "channel_max": 64, "conv_kernel": 1,
                            "use_radial_filters": True}),
}
# The modules whose outputs are the feature maps: these must run in bf16 when asked.
LAYERS = (stylegan2.SynthesisLayer, stylegan2.ToRGBLayer, stylegan2.Conv2dLayer, stylegan3.SynthesisLayer)


@pytest.fixture(scope="module", params=list(NETS))
def net(request):
    torch.manual_seed(0)
    arch, kwargs = NETS[request.param]
    return create_model(arch, **kwargs).eval()


def _inputs(G, n: int = 4):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, G.z_dim, generator=g)
    c = torch.eye(G.c_dim)[torch.arange(n) % G.c_dim] if G.c_dim else None
    return z, c


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    """RMS of the difference over the RMS of `want`."""
    return ((got.double() - want.double()).norm() / want.double().norm()).item()


def _layer_dtypes(G, fn) -> set[torch.dtype]:
    """The dtypes of every feature-map layer's output while fn() runs."""
    seen = set()
    hooks = [m.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
             for m in G.modules() if isinstance(m, LAYERS)]
    try:
        fn()
    finally:
        for h in hooks:
            h.remove()
    assert seen
    return seen


@torch.no_grad()
def test_bf16_image_is_the_float32_image_within_bf16_drift(net):
    z, c = _inputs(net)
    want = net(z, c, noise_mode="const")
    got = None

    def run():
        nonlocal got
        got = net(z, c, noise_mode="const", dtype=torch.bfloat16)
    assert _layer_dtypes(net, run) == {torch.bfloat16}
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert 0 < _rel(got, want) < IMG_REL


@torch.no_grad()
def test_bf16_on_the_reference_ops_too():
    torch.manual_seed(0)
    G = create_model(*NETS["sg2-skip"][:1], **NETS["sg2-skip"][1]).eval()
    z, c = _inputs(G)
    want = G(z, c, noise_mode="const")
    with ops.use_impl("ref"):
        assert 0 < _rel(G(z, c, noise_mode="const", dtype=torch.bfloat16), want) < IMG_REL


@pytest.mark.slow
@torch.no_grad()
def test_float32_is_unchanged_unless_bf16_is_asked(net):
    z, c = _inputs(net)
    default = net(z, c, noise_mode="const")
    assert _layer_dtypes(net, lambda: net(z, c, noise_mode="const")) == {torch.float32}
    assert torch.equal(net(z, c, noise_mode="const", dtype=torch.float32), default)
    net(z, c, noise_mode="const", dtype=torch.bfloat16)          # leaves nothing behind (e.g. cached weights)
    assert torch.equal(net(z, c, noise_mode="const"), default)


def test_dtype_argument_is_checked():
    G = create_model(*NETS["sg2-skip"][:1], **NETS["sg2-skip"][1]).eval()
    with pytest.raises(ValueError, match="float32 or torch.bfloat16"):
        G(torch.randn(1, G.z_dim), None, dtype=torch.float16)
    assert not use_bf16(None, torch.device("cuda")) and not use_bf16(torch.float32, torch.device("cuda"))
    with pytest.raises(ValueError, match="CPU only"):
        use_bf16(torch.bfloat16, torch.device("cuda"))


# ----------------------------------------------------------------------------------------------
# The ops' fast CPU path on bf16 tensors: bf16 out, the float32 result of the same (rounded) input.


def _bf16_input(*shape) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape))).to(torch.bfloat16)
    return x, x.float()


def _check_op(fn, x16, x32, **kw):
    got = fn(x16, impl="fast", **kw)
    assert got.dtype == torch.bfloat16
    assert _rel(got, fn(x32, impl="ref", **kw)) < OP_REL


@pytest.mark.parametrize("act,clamp", [("lrelu", 0.5), ("linear", None)])
def test_bias_act_bf16(act, clamp):
    x16, x32 = _bf16_input(2, 5, 6, 7)
    b = torch.randn(5)
    _check_op(lambda x, **kw: ops.bias_act(x, b.to(x.dtype), act=act, clamp=clamp, **kw), x16, x32)


@pytest.mark.parametrize("taps,sep,up,down", [(4, False, 2, 1), (4, False, 1, 2), (12, True, 2, 1), (12, True, 1, 2),
                                              (4, False, 2, 2), (4, True, 1, 1)])
def test_upfirdn2d_bf16(taps, sep, up, down):
    x16, x32 = _bf16_input(2, 3, 11, 9)
    f = ops.setup_filter(torch.rand(taps, generator=torch.Generator().manual_seed(taps)) + 0.1, separable=sep)
    _check_op(lambda x, **kw: ops.upfirdn2d(x, f, up=up, down=down, padding=[2, 1, 1, 2], **kw), x16, x32)


@pytest.mark.parametrize("up,down,k", [(1, 1, 3), (2, 1, 3), (1, 2, 3), (2, 1, 1), (1, 2, 1)])
def test_conv2d_resample_bf16(up, down, k):
    x16, x32 = _bf16_input(2, 8, 9, 9)
    w16 = torch.randn(6, 8, k, k).to(torch.bfloat16)
    f = ops.setup_filter([1, 3, 3, 1])
    _check_op(lambda x, **kw: ops.conv2d_resample(x, w16.to(x.dtype), f, up=up, down=down, padding=k // 2, **kw),
              x16, x32)


@pytest.mark.parametrize("n,up", [(1, 1), (1, 2), (3, 1), (3, 2)])
def test_modulated_conv2d_bf16(n, up):
    x16, x32 = _bf16_input(n, 8, 8, 8)
    w, s, noise = torch.randn(6, 8, 3, 3), torch.randn(n, 8), torch.randn(n, 1, 8 * up, 8 * up)
    f = ops.setup_filter([1, 3, 3, 1])
    # The float32 weight and styles go in as they are: the op rounds only the weight it convolves with.
    _check_op(lambda x, **kw: ops.modulated_conv2d(x, w, s, noise=noise, up=up, padding=1, resample_filter=f, **kw),
              x16, x32)


@pytest.mark.parametrize("up,down,sep", [(2, 2, True), (2, 1, True), (1, 2, False), (4, 2, True)])
def test_filtered_lrelu_bf16_takes_the_pytorch_path(up, down, sep, monkeypatch):
    def no_kernel(name):
        raise AssertionError("the compiled CPU kernel is float32-only")
    monkeypatch.setattr(_cpu, "load", no_kernel)
    x16, x32 = _bf16_input(2, 3, 9, 7)
    g = torch.Generator().manual_seed(up + down)
    fu = ops.setup_filter(torch.rand(12, generator=g) + 0.1, separable=sep)
    fd = ops.setup_filter(torch.rand(12, generator=g) + 0.1, separable=sep)
    b = torch.randn(3, generator=g)
    _check_op(lambda x, **kw: ops.filtered_lrelu(x, fu, fd, b.to(x.dtype), up=up, down=down, padding=[12, 13, 11, 14],
                                                 clamp=0.8, **kw), x16, x32)
