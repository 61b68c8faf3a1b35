"""StyleGAN2 generator and discriminator ("Analyzing and Improving the Image Quality of StyleGAN",
Karras et al. 2020), as trained by stylegan2-ada-pytorch and stylegan3's `--cfg=stylegan2`.

Parameter/buffer names and state_dict order are NVIDIA's, so their state dicts load with
`strict=True`. Resolution r uses min(channel_base // r, channel_max) channels; the top
`num_fp16_res` resolutions run in fp16, but only on CUDA (CPU kernels gain nothing from it). On the
CPU, `G(z, c, dtype=torch.bfloat16)` runs every block in bf16 instead (opt-in, approximate; the
mapping, styles and demodulation stay float32 and the image comes back float32).
"""
from __future__ import annotations

import math

import numpy as np
import torch

import ops
from torch_utils.misc import assert_shape

from .describe import Description, describe_discriminator, describe_generator
from .layers import FullyConnectedLayer, MappingNetwork, use_bf16
from .registry import register_arch, register_config
from .styles import StyleLayer, check_styles


class Conv2dLayer(torch.nn.Module):
    """Equalised-lr convolution with optional FIR resampling, bias, activation and clamp."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, down: int = 1, resample_filter=(1, 3, 3, 1),
                 conv_clamp: float | None = None, channels_last: bool = False, trainable: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.activation = activation
        self.up, self.down = up, down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = ops.ACTIVATIONS[activation].def_gain

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = self.up == 1  # transposed conv flips for us; plain conv2d correlates
        x = ops.conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                                padding=self.padding, flip_weight=flip_weight)
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, activation={self.activation}, "
                f"up={self.up}, down={self.down}")


# ----------------------------------------------------------------------------------------------
# Generator


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + per-pixel noise + bias + lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu", resample_filter=(1, 3, 3, 1),
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ops.ACTIVATIONS[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor | None, noise_mode: str = "random",
                fused_modconv: bool = True, gain: float = 1, styles: torch.Tensor | None = None,
                rng=None) -> torch.Tensor:
        """Styles from w through the affine, or given (`w=None, styles=...`). noise_mode='random' draws
        the noise from `rng` (a training RandomSource) when given, else from torch's default generator."""
        assert noise_mode in ("random", "const", "none")
        in_res = self.resolution // self.up
        assert_shape(x, [None, self.in_channels, in_res, in_res])
        assert (w is None) != (styles is None)
        styles = self.affine(w) if styles is None else styles

        noise = None
        if self.use_noise and noise_mode == "random":
            shape = [x.shape[0], 1, self.resolution, self.resolution]
            noise = (torch.randn(shape, device=x.device) if rng is None else rng.randn(shape).to(x.device))
            noise = noise * self.noise_strength
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength

        x = ops.modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                                 resample_filter=self.resample_filter, flip_weight=self.up == 1,
                                 fused_modconv=fused_modconv)
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        # x is modulated_conv2d's fresh output: the bias may land in it.
        return ops.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=act_clamp,
                            inplace=True)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}, "
                f"resolution={self.resolution}, up={self.up}, activation={self.activation}")


class ToRGBLayer(torch.nn.Module):
    """1x1 modulated conv to image channels, without demodulation (the output scale matters)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor | None, fused_modconv: bool = True,
                styles: torch.Tensor | None = None) -> torch.Tensor:
        assert (w is None) != (styles is None)
        styles = (self.affine(w) if styles is None else styles) * self.weight_gain
        x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return ops.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, inplace=True)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}"


def _residual_sum(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y + x, into y's buffer unless autograd may have kept y (bias_act keeps its output)."""
    return y + x if torch.is_grad_enabled() else y.add_(x)


class SynthesisBlock(torch.nn.Module):
    """One resolution: [const at 4x4 | conv0 (2x up)] -> conv1 -> image via torgb (skip/orig) or a
    1x1 skip connection (resnet). Consumes num_conv + num_torgb rows of ws."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter=(1, 3, 3, 1),
                 conv_clamp: float | None = 256, use_fp16: bool = False, fp16_channels_last: bool = False,
                 fused_modconv_default: bool | str = True, **layer_kwargs):
        super().__init__()
        assert architecture in ("orig", "skip", "resnet")
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
                                    conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp,
                                    channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter, channels_last=self.channels_last)

    def style_layer_names(self) -> list[str]:
        """The modulated layers in the order they consume rows of ws: [conv0,] conv1[, torgb]."""
        return [name for name in ("conv0", "conv1", "torgb") if hasattr(self, name)]

    def forward(self, x, img, ws, force_fp32: bool = False, fused_modconv: bool | None = None,
                update_emas: bool = False, styles: dict[str, torch.Tensor] | None = None,
                dtype: torch.dtype | None = None, **layer_kwargs):
        """ws [N, num_conv + num_torgb, w_dim], or `ws=None` and styles {'conv0'?, 'conv1', 'torgb'?: [N, C]}.
        dtype=torch.bfloat16 runs the convolutions and activations in bf16 (CPU); float32 forces float32."""
        names = self.style_layer_names()
        if styles is None:
            assert_shape(ws, [None, len(names), self.w_dim])
            inputs = iter([dict(w=w) for w in ws.unbind(dim=1)])
        else:
            assert ws is None and sorted(styles) == sorted(names)
            inputs = iter([dict(w=None, styles=styles[name]) for name in names])
        ref = ws if ws is not None else styles["conv1"]      # batch size and device
        bf16 = use_bf16(dtype, ref.device)
        if ref.device.type != "cuda" or dtype == torch.float32:
            force_fp32 = True
        dtype = torch.bfloat16 if bf16 else torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        # On the CPU x keeps the layout the previous block's ops chose (a copy per block otherwise).
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else \
            torch.contiguous_format if ref.device.type == "cuda" else torch.preserve_format
        if fused_modconv is None:
            # 'inference_only': the grouped form is faster, but its weight gradients are costly.
            fused_modconv = self.fused_modconv_default
            if fused_modconv == "inference_only":
                fused_modconv = not self.training

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ref.shape[0], 1, 1, 1])
        else:
            assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2])
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, **next(inputs), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == "resnet":
            # Residual branches are summed with gain sqrt(0.5) to keep unit variance.
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, **next(inputs), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, **next(inputs), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = _residual_sum(y, x)
        else:
            x = self.conv0(x, **next(inputs), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, **next(inputs), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2])
            img = ops.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, **next(inputs), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img.add_(y) if img is not None else y

        assert x.dtype == dtype
        assert img is None or img.dtype == torch.float32
        return x, img

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, architecture={self.architecture}"


class SynthesisNetwork(torch.nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 4, **block_kwargs):
        super().__init__()
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == self.img_resolution
            block = SynthesisBlock(in_channels, channels[res], w_dim=w_dim, resolution=res, img_channels=img_channels,
                                   is_last=is_last, use_fp16=res >= fp16_resolution, **block_kwargs)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)
        self.architecture = block.architecture  # 'orig' | 'skip' | 'resnet'

    def first_ws_rows(self) -> list[int]:
        """The first row of ws each block reads. A block's torgb and the next block's conv0 share a row."""
        rows, w_idx = [], 0
        for res in self.block_resolutions:
            rows.append(w_idx)
            w_idx += getattr(self, f"b{res}").num_conv
        return rows

    def style_layers(self) -> list[StyleLayer]:
        """Per block [conv0,] conv1[, torgb], named 'b{res}.{layer}' (see stylegan.networks.styles)."""
        layers = []
        for res, row in zip(self.block_resolutions, self.first_ws_rows()):
            block = getattr(self, f"b{res}")
            for i, name in enumerate(block.style_layer_names()):
                affine = getattr(block, name).affine
                layers.append(StyleLayer(f"b{res}.{name}", row + i, affine.out_features,
                                         "torgb" if name == "torgb" else "conv", affine))
        return layers

    def forward(self, ws: torch.Tensor | None = None, styles: dict[str, torch.Tensor] | None = None,
                **block_kwargs) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> image; or from styles {name: [N, C]} (see `style_layers`), skipping the affines.
        `dtype=torch.bfloat16` (CPU) runs the blocks in bf16: about 1% RMS drift, see benchmarks/bf16.py."""
        blocks = [getattr(self, f"b{res}") for res in self.block_resolutions]
        if (ws is None) == (styles is None):
            raise ValueError("synthesis takes either ws or styles")
        if styles is None:
            assert_shape(ws, [None, self.num_ws, self.w_dim])
            ws = ws.to(torch.float32)
            inputs = [dict(ws=ws.narrow(1, row, block.num_conv + block.num_torgb))
                      for block, row in zip(blocks, self.first_ws_rows())]
        else:
            styles = check_styles(self.style_layers(), styles)
            inputs = [dict(ws=None, styles={name: styles[f"b{block.resolution}.{name}"]
                                            for name in block.style_layer_names()}) for block in blocks]
        x = img = None
        for block, block_inputs in zip(blocks, inputs):
            x, img = block(x, img, **block_inputs, **block_kwargs)
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}"


@register_arch("stylegan2")
class Generator(torch.nn.Module):
    """z, c -> image. Settings of the synthesis network are nested (`synthesis_kwargs={...}`); the
    loaders turn NVIDIA's flat and nested records into this form (loaders/kwargs.py)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        synthesis_kwargs = synthesis_kwargs or {}
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))

    def forward(self, z, c, truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

    def describe(self) -> Description:
        # Every upsampling convolution filters through upfirdn2d; the 3x3 convolutions at each
        # resolution are the CPU kernel's (ops/conv3x3.py).
        return describe_generator(self, f"StyleGAN2 generator ({self.synthesis.architecture})",
                                  cuda_kernels=("bias_act", "upfirdn2d"), cpu_kernels=("conv3x3",))


# ----------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(torch.nn.Module):
    """One resolution of D: [fromrgb] -> conv0 -> conv1 (2x down) [+ 1x1 skip for resnet]."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int,
                 img_channels: int, first_layer_idx: int, architecture: str = "resnet", activation: str = "lrelu",
                 resample_filter=(1, 3, 3, 1), conv_clamp: float | None = None, use_fp16: bool = False,
                 fp16_channels_last: bool = False, freeze_layers: int = 0):
        super().__init__()
        assert in_channels in (0, tmp_channels)
        assert architecture in ("orig", "skip", "resnet")
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))

        self.num_layers = 0

        def trainable():
            # Layers below `freeze_layers` (counted from the top resolution) are frozen for transfer learning.
            idx = self.first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter,
                                    channels_last=self.channels_last)

    def forward(self, x, img, force_fp32: bool = False):
        if (x if x is not None else img).device.type != "cuda":
            force_fp32 = True
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format

        if x is not None:
            assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0 or self.architecture == "skip":
            assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = ops.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = _residual_sum(y, x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)

        assert x.dtype == dtype
        return x, img


class MinibatchStdLayer(torch.nn.Module):
    """Appends the std of features across groups of samples: lets D see a lack of variety."""

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        assert n % g == 0, f"batch {n} is not a multiple of the minibatch-std group size {g}"
        y = x.reshape(g, -1, f, c // f, h, w)        # [G, n/G, F, c/F, H, W]
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])                      # [n/G, F]
        y = y.reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)                       # [n, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(torch.nn.Module):
    """4x4 head: [fromrgb] -> minibatch std -> conv -> fc -> out, projected onto the label embedding."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int | None = 4, mbstd_num_channels: int = 1,
                 activation: str = "lrelu", conv_clamp: float | None = None):
        super().__init__()
        assert architecture in ("orig", "skip", "resnet")
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32: bool = False):
        assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            assert_shape(cmap, [None, self.cmap_dim])
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


@register_arch("stylegan2_discriminator")
class Discriminator(torch.nn.Module):
    def __init__(self, c_dim: int, img_resolution: int, img_channels: int, architecture: str = "resnet",
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 4,
                 conv_clamp: float | None = 256, cmap_dim: int | None = None, block_kwargs: dict | None = None,
                 mapping_kwargs: dict | None = None, epilogue_kwargs: dict | None = None):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.architecture = architecture
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        cur_layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(in_channels, channels[res], channels[res // 2], resolution=res,
                                       first_layer_idx=cur_layer_idx, use_fp16=res >= fp16_resolution,
                                       **(block_kwargs or {}), **common)
            setattr(self, f"b{res}", block)
            cur_layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}),
                                        **common)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None, update_emas: bool = False, **block_kwargs):
        assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

    def describe(self) -> Description:
        return describe_discriminator(self, f"StyleGAN2 discriminator ({self.architecture})",
                                      cuda_kernels=("bias_act", "upfirdn2d"))

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}"


# ----------------------------------------------------------------------------------------------
# Named configs (stylegan2-ada-pytorch train.py presets; the paper's FFHQ/MetFaces 1024 networks).

for _res, _base in ((1024, 32768), (512, 32768), (256, 16384)):
    register_config(f"stylegan2-{_res}", "stylegan2", z_dim=512, c_dim=0, w_dim=512, img_resolution=_res,
                    img_channels=3, mapping_kwargs={"num_layers": 8},
                    synthesis_kwargs={"channel_base": _base, "channel_max": 512, "num_fp16_res": 4,
                                      "conv_clamp": 256})
    register_config(f"stylegan2-d-{_res}", "stylegan2_discriminator", c_dim=0, img_resolution=_res,
                    img_channels=3, channel_base=_base, channel_max=512, num_fp16_res=4, conv_clamp=256,
                    epilogue_kwargs={"mbstd_group_size": 4})
