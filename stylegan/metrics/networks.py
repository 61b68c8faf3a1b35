"""The feature networks ("detectors") the metrics look through, as plain modules.

Every detector takes images [N, C, H, W] in 0..255 (uint8 or float; C = 3) and answers the questions
NVIDIA's metric code asks of its TorchScript detectors:

- Inception kind (FID, KID, IS): `features(x)` -> [N, 2048] pool features; `probabilities(x,
  output_bias=False)` -> [N, 1008] softmax (IS drops the output bias, as NVIDIA's and the original do);
- VGG16 kind (precision/recall, PPL): `features(x)` -> [N, 4096] fc7 features; `lpips(x)` -> [N, F]
  LPIPS features, whose summed squared difference between two images is their LPIPS distance.

`InceptionV3` is the TF "inception-2015-12-05" graph as NVIDIA translated it (`inception-2015-12-05.pt`):
TF-1.x bilinear resize to 299 (`resize_like_tf1`), (x - 128) / 128, batch norm without scale (eps 1e-3),
average pools that exclude the padding, and the last block's max pool (the FID variant). Its state
dict names are the TorchScript file's (`layers.conv.weight`, `layers.mixed_9.tower_conv.beta`, ...).
`VGG16` is NVIDIA's `vgg16.pt` (VGG16 with the LPIPS weights of Zhang et al.), built over the LPIPS
module of `inversion/lpips.py` plus the fully connected head. The two `*Standin` modules are the
small random-weight detectors of the reference fixtures, with the same interface."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from ..inversion.lpips import LPIPS, LPIPS_SCALE, LPIPS_SHIFT, VGG16 as VGG16_TRUNK, Trunk


def resize_like_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize to size x size as TensorFlow 1.x's `resize_bilinear` (align_corners=False,
    no half-pixel centres): output pixel j samples input position j * H / size, clamped at the border.
    NVIDIA's detectors do it with an affine grid shifted by 1/H - 1/size; so do we, for the same sums."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    theta = theta.to(x.dtype).unsqueeze(0).repeat([n, 1, 1])
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _rgb(images: torch.Tensor) -> torch.Tensor:
    assert images.ndim == 4 and images.shape[1] in (1, 3), images.shape
    x = images.to(torch.float32)
    return x.repeat([1, 3, 1, 1]) if x.shape[1] == 1 else x


# ---------------------------------------------------------------------------------------------------
# Inception-v3, TF "inception-2015-12-05" (FID variant)

class TFConv(torch.nn.Module):
    """conv (no bias) -> batch norm with shift only (TF's `scale=False`, eps 1e-3) -> relu.
    Tensors named as in NVIDIA's TorchScript: weight, beta, mean, var."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride, self.padding = stride, padding
        self.register_buffer("weight", torch.zeros([cout, cin, kh, kw]))
        self.register_buffer("beta", torch.zeros([cout]))
        self.register_buffer("mean", torch.zeros([cout]))
        self.register_buffer("var", torch.ones([cout]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        x = F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, 1e-3)
        return F.relu(x)


def _avg_pool3(x: torch.Tensor) -> torch.Tensor:
    # TF's SAME average pool divides by the number of pixels inside the image.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class _Seq(torch.nn.Sequential):
    """A tower of TFConvs named conv, conv_1, conv_2, ... (TF's scope names), with an optional pool first."""

    def __init__(self, *convs: TFConv, pool: bool = False):
        super().__init__()
        if pool:
            self.add_module("pool", _Pool())
        for i, conv in enumerate(convs):
            self.add_module("conv" if i == 0 else f"conv_{i}", conv)


class _Pool(torch.nn.Module):
    def forward(self, x):
        return _avg_pool3(x)


class InceptionA(torch.nn.Module):          # mixed, mixed_1, mixed_2 (35x35)
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.conv = TFConv(cin, 64, 1)
        self.tower = _Seq(TFConv(cin, 48, 1), TFConv(48, 64, 5, padding=2))
        self.tower_1 = _Seq(TFConv(cin, 64, 1), TFConv(64, 96, 3, padding=1), TFConv(96, 96, 3, padding=1))
        self.tower_2 = _Seq(TFConv(cin, pool_features, 1), pool=True)

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class InceptionB(torch.nn.Module):          # mixed_3 (35 -> 17)
    def __init__(self, cin: int):
        super().__init__()
        self.conv = TFConv(cin, 384, 3, stride=2)
        self.tower = _Seq(TFConv(cin, 64, 1), TFConv(64, 96, 3, padding=1), TFConv(96, 96, 3, stride=2))

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(torch.nn.Module):          # mixed_4 .. mixed_7 (17x17)
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.conv = TFConv(cin, 192, 1)
        self.tower = _Seq(TFConv(cin, c7, 1), TFConv(c7, c7, (1, 7), padding=(0, 3)),
                          TFConv(c7, 192, (7, 1), padding=(3, 0)))
        self.tower_1 = _Seq(TFConv(cin, c7, 1), TFConv(c7, c7, (7, 1), padding=(3, 0)),
                            TFConv(c7, c7, (1, 7), padding=(0, 3)), TFConv(c7, c7, (7, 1), padding=(3, 0)),
                            TFConv(c7, 192, (1, 7), padding=(0, 3)))
        self.tower_2 = _Seq(TFConv(cin, 192, 1), pool=True)

    def forward(self, x):
        return torch.cat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)], 1)


class InceptionD(torch.nn.Module):          # mixed_8 (17 -> 8)
    def __init__(self, cin: int):
        super().__init__()
        self.tower = _Seq(TFConv(cin, 192, 1), TFConv(192, 320, 3, stride=2))
        self.tower_1 = _Seq(TFConv(cin, 192, 1), TFConv(192, 192, (1, 7), padding=(0, 3)),
                            TFConv(192, 192, (7, 1), padding=(3, 0)), TFConv(192, 192, 3, stride=2))

    def forward(self, x):
        return torch.cat([self.tower(x), self.tower_1(x), F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(torch.nn.Module):          # mixed_9 (average pool), mixed_10 (max pool: the FID graph's quirk)
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.conv = TFConv(cin, 320, 1)
        self.tower_conv = TFConv(cin, 384, 1)
        self.tower_mixed_conv = TFConv(384, 384, (1, 3), padding=(0, 1))
        self.tower_mixed_conv_1 = TFConv(384, 384, (3, 1), padding=(1, 0))
        self.tower_1_conv = TFConv(cin, 448, 1)
        self.tower_1_conv_1 = TFConv(448, 384, 3, padding=1)
        self.tower_1_mixed_conv = TFConv(384, 384, (1, 3), padding=(0, 1))
        self.tower_1_mixed_conv_1 = TFConv(384, 384, (3, 1), padding=(1, 0))
        self.tower_2_conv = TFConv(cin, 192, 1)

    def forward(self, x):
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        pool = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool3(x)
        return torch.cat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                          self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b), self.tower_2_conv(pool)], 1)


class _InceptionLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = TFConv(3, 32, 3, stride=2)
        self.conv_1 = TFConv(32, 32, 3)
        self.conv_2 = TFConv(32, 64, 3, padding=1)
        self.conv_3 = TFConv(64, 80, 1)
        self.conv_4 = TFConv(80, 192, 3)
        self.mixed, self.mixed_1, self.mixed_2 = InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64)
        self.mixed_3 = InceptionB(288)
        self.mixed_4, self.mixed_5 = InceptionC(768, 128), InceptionC(768, 160)
        self.mixed_6, self.mixed_7 = InceptionC(768, 160), InceptionC(768, 192)
        self.mixed_8 = InceptionD(768)
        self.mixed_9, self.mixed_10 = InceptionE(1280, max_pool=False), InceptionE(2048, max_pool=True)

    def forward(self, x):
        x = self.conv_2(self.conv_1(self.conv(x)))
        x = F.max_pool2d(x, 3, stride=2)                                   # pool0
        x = self.conv_4(self.conv_3(x))
        x = F.max_pool2d(x, 3, stride=2)                                   # pool1
        for name in ["mixed"] + [f"mixed_{i}" for i in range(1, 11)]:
            x = getattr(self, name)(x)
        return F.avg_pool2d(x, 8, stride=8)                                # pool2: [N, 2048, 1, 1] at 299 px


class InceptionV3(torch.nn.Module):
    kind = "inception"
    feature_dim = 2048
    input_size = 299

    def __init__(self, num_classes: int = 1008):
        super().__init__()
        self.layers = _InceptionLayers()
        self.output = torch.nn.Linear(2048, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = resize_like_tf1(_rgb(images), self.input_size)
        x = (x - 128) / 128
        return self.layers(x).reshape(-1, self.feature_dim)

    def probabilities(self, images: torch.Tensor, output_bias: bool = False) -> torch.Tensor:
        f = self.features(images)
        return F.linear(f, self.output.weight, self.output.bias if output_bias else None).softmax(dim=1)


# ---------------------------------------------------------------------------------------------------
# VGG16 + LPIPS (NVIDIA's vgg16.pt)

class VGG16(torch.nn.Module):
    """VGG16 (configuration D) over LPIPS: `lpips` is the LPIPS module (trunk + lin weights, input
    scaling of the `lpips` package, which is ImageNet's mean/std written for -1..1); `features` resizes
    to 224 like TF 1.x (NVIDIA's default), max-pools the last stage and runs fc6, fc7 (ReLU after each)."""
    kind = "vgg16"
    feature_dim = 4096
    input_size = 224

    def __init__(self, trunk: Trunk = VGG16_TRUNK, shift: Optional[Sequence[float]] = LPIPS_SHIFT,
                 scale: Optional[Sequence[float]] = LPIPS_SCALE, num_classes: int = 1000):
        super().__init__()
        self.lpips_net = LPIPS(trunk, shift, scale)
        c = trunk.taps[-1]
        self.fc1 = torch.nn.Linear(c * 7 * 7, 4096)
        self.fc2 = torch.nn.Linear(4096, 4096)
        self.fc3 = torch.nn.Linear(4096, num_classes)

    def lpips(self, images: torch.Tensor) -> torch.Tensor:
        return self.lpips_net(_rgb(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = resize_like_tf1(_rgb(images), self.input_size)
        x = F.max_pool2d(self.lpips_net.taps(x)[-1], 2)
        x = F.adaptive_avg_pool2d(x, (7, 7)).flatten(1)
        return F.relu(self.fc2(F.relu(self.fc1(x))))


# ---------------------------------------------------------------------------------------------------
# The reference fixtures' stand-ins (random weights, the real call interface; metrics/README.md)

class InceptionStandin(torch.nn.Module):
    kind = "inception"
    feature_dim = 2048
    input_size = 64

    def __init__(self):
        super().__init__()
        for i, (cout, cin) in enumerate([(32, 3), (48, 32), (64, 48)]):
            self.register_buffer(f"w{i}", torch.zeros([cout, cin, 4, 4]))
            self.register_buffer(f"b{i}", torch.zeros([cout]))
        self.register_buffer("fc_w", torch.zeros([2048, 128]))
        self.register_buffer("fc_b", torch.zeros([2048]))
        self.register_buffer("q_w", torch.zeros([64, 2048]))
        self.register_buffer("p_w", torch.zeros([1008, 64]))
        self.register_buffer("out_b", torch.zeros([1008]))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(_rgb(images), size=(self.input_size, self.input_size), mode="bilinear",
                          align_corners=False)
        x = x / 127.5 - 1
        for i in range(3):
            x = F.relu(F.conv2d(x, getattr(self, f"w{i}"), getattr(self, f"b{i}"), stride=2, padding=1))
        pooled = torch.cat([x.mean(dim=[2, 3]), x.amax(dim=[2, 3])], dim=1)
        return F.relu(pooled @ self.fc_w.T + self.fc_b)

    def probabilities(self, images: torch.Tensor, output_bias: bool = False) -> torch.Tensor:
        h = self.features(images) @ self.q_w.T
        h = h * (8 / torch.sqrt(h.square().sum(dim=1, keepdim=True) + 1e-8))
        logits = h @ self.p_w.T
        return (logits + self.out_b if output_bias else logits).softmax(dim=1)


VGG16_STANDIN_TRUNK = Trunk(stages=((16, 16), (32,), (32,)), pool="avg")


class VGG16Standin(torch.nn.Module):
    kind = "vgg16"
    feature_dim = 4096

    def __init__(self):
        super().__init__()
        self.lpips_net = LPIPS(VGG16_STANDIN_TRUNK, None, None)
        self.register_buffer("fc_w", torch.zeros([4096, 64]))
        self.register_buffer("fc_b", torch.zeros([4096]))

    def lpips(self, images: torch.Tensor) -> torch.Tensor:
        return self.lpips_net(_rgb(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.lpips_net.taps(_rgb(images))[-1]
        pooled = torch.cat([x.mean(dim=[2, 3]), x.amax(dim=[2, 3])], dim=1)
        return F.relu(pooled @ self.fc_w.T + self.fc_b)

