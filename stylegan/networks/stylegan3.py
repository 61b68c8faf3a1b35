"""StyleGAN3 generator ("Alias-Free Generative Adversarial Networks", Karras et al. 2021), configs T and R.

The synthesis network treats every feature map as samples of a continuous, band-limited signal.
Each layer i has a cutoff f_c[i], a minimum stopband f_t[i], a sampling rate s[i] and a transition
half-width f_h[i]; the layer modulates a convolution, then applies a leaky ReLU at a temporarily
raised rate (upsample -> lrelu -> low-pass -> downsample) so that the nonlinearity's new high
frequencies are removed before resampling instead of aliasing back.

On the CPU, `G(z, c, dtype=torch.bfloat16)` runs the layers in bf16 (opt-in, approximate; the mapping,
Fourier features, styles and demodulation stay float32 and the image comes back float32).

Parameter/buffer names, module order and state_dict order are NVIDIA's
(`training/networks_stylegan3.py`), so their `G_ema` state dict loads with `strict=True`.
"""
from __future__ import annotations


import numpy as np
import scipy.signal
import scipy.special
import torch

import ops
from torch_utils.misc import assert_shape

from .describe import Description, describe_generator
from .layers import FullyConnectedLayer, MappingNetwork, use_bf16
from .registry import register_arch, register_config
from .styles import StyleLayer, check_styles


def modulated_conv2d(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor, demodulate: bool = True, padding=0,
                     input_gain: torch.Tensor | None = None) -> torch.Tensor:
    """StyleGAN3 modulated convolution, executed as one grouped convolution (one group per sample).

    x [N, I, H, W], w [O, I, k, k], s [N, I], input_gain [] / [I] / [N, I] (1 / running RMS of x).
    Unlike StyleGAN2, w and s are first normalised to unit RMS so fp16 cannot overflow; the
    demodulation that follows makes both normalisations exact no-ops in real arithmetic."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = w.shape
    assert_shape(w, [out_ch, in_ch, kh, kw])
    assert_shape(x, [n, in_ch, None, None])
    assert_shape(s, [n, in_ch])

    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()

    w = w.unsqueeze(0) * s.reshape(n, 1, in_ch, 1, 1)                       # w'_{n,o,i,k} = w_{o,i,k} s_{n,i}
    if demodulate:
        d = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()                    # [N, O]
        w = w * d.reshape(n, out_ch, 1, 1, 1)
    if input_gain is not None:
        # Folded into the weights: scaling x itself would cost a pass over the whole feature map.
        g = input_gain.expand(n, in_ch)
        w = w * g.reshape(n, 1, in_ch, 1, 1)

    x = x.reshape(1, n * in_ch, *x.shape[2:])
    w = w.reshape(n * out_ch, in_ch, kh, kw)
    x = torch.nn.functional.conv2d(x, w.to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, out_ch, *x.shape[2:])


def _kaiser_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """1-D windowed-sinc low-pass; scipy picks the Kaiser beta for the transition band `width`."""
    return scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)


def _jinc_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """2-D radially symmetric low-pass: the jinc (ideal disc-shaped passband) times the separable
    Kaiser window of the 1-D design, normalised to unit DC gain."""
    # Tap positions; numtaps is even, so no tap sits at r = 0 (where jinc would be 0/0).
    pos = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(pos, pos))
    f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f *= np.outer(window, window)
    f /= np.sum(f)
    return f


class SynthesisInput(torch.nn.Module):
    """Fourier features: C sinusoids with frequencies drawn uniformly-ish from a disc of radius
    `bandwidth`, sampled on a `size` grid at `sampling_rate`, followed by a learned C x C mixing.

    The affine layer predicts from w a rotation (r_c, r_s) and a translation (t_x, t_y) of the
    continuous input; `transform` is an extra user-specified inverse transform of the output image
    (identity unless set, e.g. by gen_images.py --translate/--rotate)."""

    def __init__(self, w_dim: int, channels: int, size, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Random directions, radius pushed toward the disc's edge by the exp(r^2)^(1/4) falloff.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5

        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        # weight 0 and bias (1, 0, 0, 0): the identity transform at initialisation.
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor | None, styles: torch.Tensor | None = None) -> torch.Tensor:
        """w [N, w_dim], or `w=None` and styles [N, 4]: the affine's output (r_c, r_s, t_x, t_y)."""
        assert (w is None) != (styles is None)
        if styles is None:
            assert_shape(w, [None, self.w_dim])
            styles = self.affine(w)
        assert_shape(styles, [None, 4])
        n = styles.shape[0]
        c = self.channels
        width, height = int(self.size[0]), int(self.size[1])

        # t = (r_c, r_s, t_x, t_y), rotation part normalised to a unit complex number.
        t = styles
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        r_c, r_s, t_x, t_y = t.unbind(dim=1)
        one, zero = torch.ones_like(r_c), torch.zeros_like(r_c)
        # Inverse rotation and inverse translation of the output image (homogeneous 3x3).
        m_r = torch.stack([r_c, -r_s, zero, r_s, r_c, zero, zero, zero, one], dim=1).reshape(n, 3, 3)
        m_t = torch.stack([one, zero, -t_x, zero, one, -t_y, zero, zero, one], dim=1).reshape(n, 3, 3)
        # Rotate first, then translate, then the user transform (all inverse, acting on coordinates).
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)                   # [N, 3, 3]

        # sin(2 pi (f . A x + f . b + phi)) = sin(2 pi ((A^T f) . x + (f . b + phi))).
        freqs = self.freqs.unsqueeze(0)                                        # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)   # [N, C]
        freqs = freqs @ transforms[:, :2, :2]                                  # [N, C, 2]
        assert_shape(freqs, [n, c, 2])

        # A user transform can scale frequencies past the bandwidth: fade them out linearly,
        # reaching zero at the Nyquist frequency sampling_rate / 2.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)  # [N, C]

        # Sample positions: pixel centres, spanning size / sampling_rate units of the continuous plane.
        theta = torch.eye(2, 3, device=styles.device)
        theta[0, 0] = 0.5 * width / self.sampling_rate
        theta[1, 1] = 0.5 * height / self.sampling_rate
        grid = torch.nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, height, width], align_corners=False)

        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)

        # Learned channel mixing, equalised learning rate.
        x = x @ (self.weight / np.sqrt(c)).t()
        x = x.permute(0, 3, 1, 2)
        assert_shape(x, [n, c, height, width])
        return x

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={list(map(int, self.size))}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


class SynthesisLayer(torch.nn.Module):
    """Modulated conv -> bias -> filtered leaky ReLU (upsample x up, lrelu, low-pass, downsample x down).

    The intermediate rate tmp_sampling_rate = max(s_in, s_out) * lrelu_upsampling gives the
    nonlinearity headroom; the up filter band-limits to the input cutoff, the down filter to the
    output cutoff. ToRGB (the last layer) is a plain 1x1 modulated conv plus bias and clamp."""

    def __init__(self, w_dim: int, is_torgb: bool, is_critically_sampled: bool, use_fp16: bool,
                 in_channels: int, out_channels: int, in_size, out_size,
                 in_sampling_rate: int, out_sampling_rate: int, in_cutoff: float, out_cutoff: float,
                 in_half_width: float, out_half_width: float,
                 conv_kernel: int = 3, filter_size: int = 6, lrelu_upsampling: int = 2,
                 use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        # Registration order fixes NVIDIA's state_dict order: weight, bias, magnitude_ema,
        # up_filter, down_filter, then the affine child.
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Up filter: band-limit to the input cutoff at the raised rate (n_taps = filter_size * factor).
        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        assert in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", self.design_lowpass_filter(
            numtaps=self.up_taps, cutoff=in_cutoff, width=in_half_width * 2, fs=self.tmp_sampling_rate))

        # Down filter: band-limit to the output cutoff; radial (jinc) for R except at the
        # critically sampled end, where a separable filter keeps the image's corners sharp.
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        assert out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("down_filter", self.design_lowpass_filter(
            numtaps=self.down_taps, cutoff=out_cutoff, width=out_half_width * 2, fs=self.tmp_sampling_rate,
            radial=self.down_radial))

        # Padding so that (in + k - 1) samples, upsampled, filtered twice and decimated, give
        # exactly out_size samples; the +up_factor centres the kernels (symmetric sample positions,
        # paper appendix C.3).
        pad_total = (self.out_size - 1) * self.down_factor + 1
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor
        pad_total += self.up_taps + self.down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    @staticmethod
    def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                              radial: bool = False) -> torch.Tensor | None:
        """Kaiser-windowed low-pass: separable 1-D [numtaps] (scipy firwin), or 2-D radial
        [numtaps, numtaps] (jinc = ideal circular low-pass, times the separable Kaiser window).
        None for one tap: the identity, which filtered_lrelu then skips."""
        assert numtaps >= 1
        if numtaps == 1:
            return None
        f = _jinc_lowpass(numtaps, cutoff, width, fs) if radial else _kaiser_lowpass(numtaps, cutoff, width, fs)
        return torch.as_tensor(f, dtype=torch.float32)

    def forward(self, x: torch.Tensor, w: torch.Tensor | None, noise_mode: str = "random", force_fp32: bool = False,
                update_emas: bool = False, styles: torch.Tensor | None = None,
                dtype: torch.dtype | None = None, rng=None) -> torch.Tensor:
        """Styles from w [N, w_dim] through the affine, or given (`w=None, styles=[N, in_channels]`).
        dtype=torch.bfloat16 runs the convolution and filtered lrelu in bf16 (CPU); float32 forces float32."""
        assert noise_mode in ("random", "const", "none")  # StyleGAN3 has no noise inputs (nor draws from rng)
        in_w, in_h = int(self.in_size[0]), int(self.in_size[1])
        assert_shape(x, [None, self.in_channels, in_h, in_w])
        assert (w is None) != (styles is None)
        if styles is None:
            assert_shape(w, [x.shape[0], self.w_dim])
        else:
            assert_shape(styles, [x.shape[0], self.in_channels])

        # Running mean square of the input: input_gain = 1/RMS keeps activations at unit scale
        # without a per-sample normalisation.
        if update_emas:
            magnitude_cur = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        styles = self.affine(w) if styles is None else styles
        if self.is_torgb:
            # No demodulation in ToRGB: equalised-lr gain 1/sqrt(fan_in) goes on the styles.
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel ** 2))

        fp16 = self.use_fp16 and not force_fp32 and dtype is None and x.device.type == "cuda"
        dtype = torch.bfloat16 if use_bf16(dtype, x.device) else torch.float16 if fp16 else torch.float32
        x = modulated_conv2d(x.to(dtype), self.weight, styles, demodulate=not self.is_torgb,
                             padding=self.conv_kernel - 1, input_gain=input_gain)

        # ToRGB: slope 1 and gain 1 make the "lrelu" the identity, leaving bias + clamp.
        gain = 1 if self.is_torgb else np.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        x = ops.filtered_lrelu(x, fu=self.up_filter, fd=self.down_filter, b=self.bias.to(x.dtype),
                               up=self.up_factor, down=self.down_factor, padding=self.padding,
                               gain=gain, slope=slope, clamp=self.conv_clamp)

        assert_shape(x, [None, self.out_channels, int(self.out_size[1]), int(self.out_size[0])])
        assert x.dtype == dtype
        return x

    def schedule(self) -> dict:
        """The derived per-layer parameters (the fixtures' `layer_schedule` entries)."""
        return dict(
            in_channels=self.in_channels, out_channels=self.out_channels,
            in_size=int(self.in_size[0]), out_size=int(self.out_size[0]),
            in_sampling_rate=self.in_sampling_rate, out_sampling_rate=self.out_sampling_rate,
            tmp_sampling_rate=self.tmp_sampling_rate,
            in_cutoff=float(self.in_cutoff), out_cutoff=float(self.out_cutoff),
            in_half_width=float(self.in_half_width), out_half_width=float(self.out_half_width),
            up_factor=self.up_factor, down_factor=self.down_factor, up_taps=self.up_taps,
            down_taps=self.down_taps, down_radial=bool(self.down_radial), padding=list(self.padding),
            conv_kernel=self.conv_kernel, is_torgb=bool(self.is_torgb),
            is_critically_sampled=bool(self.is_critically_sampled), use_fp16=bool(self.use_fp16))

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled}, "
                f"use_fp16={self.use_fp16}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"in_size={int(self.in_size[0])}, out_size={int(self.out_size[0])}, "
                f"in_sampling_rate={self.in_sampling_rate}, out_sampling_rate={self.out_sampling_rate}, "
                f"in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g}, "
                f"up={self.up_factor}x{self.up_taps}, down={self.down_factor}x{self.down_taps}, "
                f"down_radial={self.down_radial}")


def alias_free_schedule(img_resolution: int, img_channels: int, channel_base: int, channel_max: int,
                        num_layers: int, num_critical: int, first_cutoff: float, first_stopband: float,
                        last_stopband_rel: float, margin_size: int) -> dict[str, np.ndarray]:
    """Per-layer f_c, f_t, s, f_h, size and channels for layers 0..num_layers (float64 numpy).

    f_c and f_t grow geometrically from layer 0 to layer N - num_critical and stay constant after
    it, ending at f_c = img_resolution / 2 and f_t = f_c * last_stopband_rel."""
    f_c_last = img_resolution / 2
    f_t_last = f_c_last * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (f_c_last / first_cutoff) ** exponents
    stopbands = first_stopband * (f_t_last / first_stopband) ** exponents
    # s: the smallest power of two that holds the stopband (s >= 2 f_t), at most the image resolution.
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    # f_h: the transition band reaches up to f_t, or to s / 2 where the rate leaves more room.
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    # margin_size extra samples on each side absorb border effects; the last two layers are cropped.
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    # Fewer channels where the band is wider (constant memory per layer, roughly).
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates, half_widths=half_widths,
                sizes=sizes, channels=channels)


class SynthesisNetwork(torch.nn.Module):
    """w [N, num_ws, w_dim] -> image. Derives the layer schedule from the paper's geometric
    progressions: cutoffs f_c from first_cutoff to img_resolution / 2 and minimum stopbands f_t
    from first_stopband to f_c,N * last_stopband_rel over the first num_layers - num_critical
    layers; the last num_critical layers are critically sampled (f_c = s / 2)."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int = 32768, channel_max: int = 512, num_layers: int = 14, num_critical: int = 2,
                 first_cutoff: float = 2, first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                 margin_size: int = 10, output_scale: float = 0.25, num_fp16_res: int = 4,
                 use_radial_filters: bool = False, **layer_kwargs):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2            # input + num_layers + ToRGB
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res
        self.use_radial_filters = use_radial_filters    # config R (with 1x1 convs) vs T

        sched = alias_free_schedule(img_resolution, img_channels, channel_base, channel_max, num_layers,
                                    num_critical, first_cutoff, first_stopband, last_stopband_rel, margin_size)
        cutoffs, sampling_rates, half_widths = sched["cutoffs"], sched["sampling_rates"], sched["half_widths"]
        sizes, channels = sched["sizes"], sched["channels"]

        self.input = SynthesisInput(w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]),
                                    sampling_rate=sampling_rates[0], bandwidth=cutoffs[0])
        self.layer_names = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                use_fp16=bool(sampling_rates[idx] * (2 ** num_fp16_res) > img_resolution),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]),
                in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]), out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx],
                use_radial_filters=use_radial_filters, **layer_kwargs)
            name = f"L{idx}_{int(layer.out_size[0])}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def style_layers(self) -> list[StyleLayer]:
        """'input' (the Fourier features' transform) reads ws row 0, layer L{i} row i + 1: no sharing."""
        layers = [StyleLayer("input", 0, 4, "input", self.input.affine)]
        for idx, name in enumerate(self.layer_names):
            layer = getattr(self, name)
            layers.append(StyleLayer(name, idx + 1, layer.affine.out_features,
                                     "torgb" if layer.is_torgb else "conv", layer.affine))
        return layers

    def forward(self, ws: torch.Tensor | None = None, styles: dict[str, torch.Tensor] | None = None,
                **layer_kwargs) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> image; or from styles {name: [N, C]} (see `style_layers`), skipping the affines.
        `dtype=torch.bfloat16` (CPU) runs the layers in bf16: about 1% RMS drift, see benchmarks/bf16.py."""
        if (ws is None) == (styles is None):
            raise ValueError("synthesis takes either ws or styles")
        if styles is None:
            assert_shape(ws, [None, self.num_ws, self.w_dim])
            inputs = [dict(w=w) for w in ws.to(torch.float32).unbind(dim=1)]
        else:
            styles = check_styles(self.style_layers(), styles)
            inputs = [dict(w=None, styles=styles[name]) for name in ["input"] + self.layer_names]
        x = self.input(**inputs[0])
        for name, layer_inputs in zip(self.layer_names, inputs[1:]):
            x = getattr(self, name)(x, **layer_inputs, **layer_kwargs)
        if self.output_scale != 1:
            x = x * self.output_scale
        assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution])
        return x.to(torch.float32)

    def layer_schedule(self) -> dict:
        inp = self.input
        return dict(
            input=dict(channels=inp.channels, size=[int(s) for s in inp.size],
                       sampling_rate=float(inp.sampling_rate), bandwidth=float(inp.bandwidth)),
            layers=[dict(name=name, **getattr(self, name).schedule()) for name in self.layer_names])

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}, "
                f"num_critical={self.num_critical}, margin_size={self.margin_size}, "
                f"num_fp16_res={self.num_fp16_res}")


@register_arch("stylegan3")
class Generator(torch.nn.Module):
    """z, c -> w (2-layer mapping) -> image. Called like NVIDIA's: G(z, c, truncation_psi, ...)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, **synthesis_kwargs):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        # Synthesis first: NVIDIA's state_dict lists synthesis.* before mapping.*.
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                          **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        mapping_kwargs = {"num_layers": 2, "w_avg_beta": 0.998, **(mapping_kwargs or {})}
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

    def describe(self) -> Description:
        config = "R" if self.synthesis.use_radial_filters else "T"
        return describe_generator(self, f"StyleGAN3-{config} generator",
                                  cuda_kernels=("bias_act", "filtered_lrelu"),
                                  cpu_kernels=("filtered_lrelu",))


def pose_transform(translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> np.ndarray:
    """The [3, 3] input transform of gen_images.py --translate TX,TY --rotate DEG: the inverse of the
    pose [[cos a, sin a, tx], [-sin a, cos a, ty], [0, 0, 1]] (a in degrees), since the Fourier input
    samples its plane at transformed coordinates. The image spans about one unit of that plane."""
    a = np.deg2rad(float(rotate))
    tx, ty = (float(v) for v in translate)
    pose = np.array([[np.cos(a), np.sin(a), tx], [-np.sin(a), np.cos(a), ty], [0.0, 0.0, 1.0]])
    if not np.isfinite(pose).all():
        raise ValueError(f"translate and rotate must be finite numbers, got {translate}, {rotate}")
    return np.linalg.inv(pose)


def check_input_transform(G: torch.nn.Module, transform: torch.Tensor | np.ndarray) -> torch.Tensor:
    """`transform` as the float32 [3, 3] tensor G's Fourier input takes, on its device; a ValueError
    when G has no such input (StyleGAN2) or the matrix is not a finite 3x3."""
    layer = getattr(G.synthesis, "input", None)
    if layer is None or not hasattr(layer, "transform"):
        raise ValueError("a transform needs a StyleGAN3 generator: this one has no Fourier input to transform")
    m = torch.as_tensor(np.asarray(transform, dtype=np.float32)).to(layer.transform.device)
    if m.shape != (3, 3) or not bool(torch.isfinite(m).all()):
        raise ValueError(f"transform must be a finite 3x3 matrix, got shape {tuple(m.shape)}")
    return m


def set_input_transform(G: torch.nn.Module, transform: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Write a [3, 3] transform into StyleGAN3's Fourier input of G (in place: pass a copy to keep G); returns it."""
    m = check_input_transform(G, transform)
    G.synthesis.input.transform.copy_(m)
    return m.cpu().clone()


# Named configs, as stylegan3's train.py builds them: T uses --cbase/--cmax (defaults 32768/512;
# the 256 px official runs used --cbase=16384); R doubles both, uses 1x1 convs and radial filters.
# magnitude_ema_beta = 0.5 ** (batch / 20k) with the official batch (32 at 1024/512, 64 at 256).
def _register_sg3_configs() -> None:
    for res, cbase, batch in ((1024, 32768, 32), (512, 32768, 32), (256, 16384, 64)):
        common = dict(z_dim=512, w_dim=512, mapping_kwargs={"num_layers": 2})
        beta = 0.5 ** (batch / (20 * 1e3))
        register_config(f"stylegan3-t-{res}", "stylegan3", **common, channel_base=cbase, channel_max=512,
                        magnitude_ema_beta=beta, c_dim=0, img_resolution=res, img_channels=3)
        register_config(f"stylegan3-r-{res}", "stylegan3", **common, channel_base=cbase * 2, channel_max=1024,
                        magnitude_ema_beta=beta, conv_kernel=1, use_radial_filters=True,
                        c_dim=0, img_resolution=res, img_channels=3)


_register_sg3_configs()
