"""The StyleGAN2/3 training objective (NVIDIA's `StyleGAN2Loss`), one phase at a time.

    G main:  softplus(-D(A(G(z))))                        non-saturating logistic loss
    G reg:   pl_weight * (|J_w^T y| - a)^2                path length, y ~ N(0, I) / sqrt(HW), a its running mean
    D main:  softplus(D(A(G(z)))) + softplus(-D(A(x)))    logistic loss on fakes and reals
    D reg:   gamma / 2 * |grad_x D(A(x))|^2               R1 on reals

A is the augment pipe (ADA), applied to every image D sees. Style mixing: with probability
`style_mixing_prob` the ws rows from a random cutoff on come from a second latent. StyleGAN3-R blurs
D's inputs with a Gaussian whose sigma fades from `blur_init_sigma` to 0 over `blur_fade_kimg`.

Lazy regularisation runs the reg phases every `interval` iterations with the gradient scaled by the
interval (`gain`), which the loop's optimiser settings compensate for. A 'both' phase (no lazy
regularisation) does main and reg in one backward pass.

The two NVIDIA code bases differ in two rules, chosen by `rules`:

  * which G calls move the running means (`w_avg`, StyleGAN3's `magnitude_ema`): stylegan2-ada-pytorch
    updates them in every call of G in training mode, stylegan3 only in D main; the style-mixing
    second mapping never does;
  * stylegan2-ada-pytorch adds `0 * output` to the regularisation losses (its DDP needs every output
    in the graph), so the parameters a penalty does not reach (the last ToRGB bias for path length,
    D's epilogue biases for R1) get a zero gradient instead of none, and Adam steps them: their second
    moments decay and their step counts advance. stylegan3 leaves them without gradient.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

import ops

from .rng import RandomSource

G_PHASES = ("Gmain", "Greg", "Gboth")
D_PHASES = ("Dmain", "Dreg", "Dboth")
RULES = ("stylegan2-ada", "stylegan3")
_EMA_PHASES = {"stylegan2-ada": ("Gmain", "Greg", "Gboth", "Dmain", "Dboth"), "stylegan3": ("Dmain", "Dboth")}

Report = Callable[[str, torch.Tensor], None]


def blur_sigma(cur_nimg: int, blur_init_sigma: float, blur_fade_kimg: float) -> float:
    """StyleGAN3-R's blur of D's inputs: linear fade from blur_init_sigma to 0 over blur_fade_kimg."""
    if blur_fade_kimg <= 0:
        return 0.0
    return max(1 - cur_nimg / (blur_fade_kimg * 1e3), 0) * blur_init_sigma


def blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian of `sigma` pixels, 3 sigma each side (nothing below one tap each side)."""
    size = np.floor(sigma * 3)
    if size <= 0:
        return img
    f = torch.arange(-size, size + 1, device=img.device).div(sigma).square().neg().exp2()
    return ops.filter2d(img, f / f.sum())


class StyleGAN2Loss:
    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, augment_pipe: Optional[torch.nn.Module] = None,
                 r1_gamma: float = 10, style_mixing_prob: float = 0, pl_weight: float = 0, pl_batch_shrink: int = 2,
                 pl_decay: float = 0.01, blur_init_sigma: float = 0, blur_fade_kimg: float = 0,
                 rules: str = "stylegan3", device: torch.device | str = "cpu"):
        if rules not in RULES:
            raise ValueError(f"unknown training rules {rules!r}: expected one of {', '.join(RULES)}")
        self.G, self.D, self.augment_pipe = G, D, augment_pipe
        self.r1_gamma = r1_gamma
        self.style_mixing_prob = style_mixing_prob
        self.pl_weight = pl_weight
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.blur_init_sigma = blur_init_sigma
        self.blur_fade_kimg = blur_fade_kimg
        self.rules = rules
        self.ema_phases = _EMA_PHASES[rules]
        self.zero_terms = rules == "stylegan2-ada"
        self.pl_mean = torch.zeros([], device=device)     # running mean of the path lengths

    # ------------------------------------------------------------------------------------------

    def run_G(self, z: torch.Tensor, c: torch.Tensor, rng: RandomSource, update_emas: bool = False):
        """z, c -> (image, ws), with style mixing and per-layer noise drawn from `rng`."""
        G = self.G
        ws = G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing_prob > 0:
            num_ws = ws.shape[1]
            # Drawn in this order whether or not mixing happens; cutoff num_ws mixes nothing.
            cutoff = rng.randint(1, num_ws)
            cutoff = torch.where(rng.rand([]).to(ws.device) < self.style_mixing_prob, cutoff.to(ws.device),
                                 torch.full_like(cutoff, num_ws, device=ws.device))
            ws[:, cutoff:] = G.mapping(rng.randn(z.shape).to(z.device), c, update_emas=False)[:, cutoff:]
        # Training-mode synthesis: the non-fused modulated convolution, as NVIDIA trains.
        img = G.synthesis(ws, update_emas=update_emas, noise_mode="random", rng=rng, **_unfused(G))
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor, rng: RandomSource, sigma: float = 0) -> torch.Tensor:
        img = blur(img, sigma)
        if self.augment_pipe is not None:
            img = self.augment_pipe(img, rng=rng)
        return self.D(img, c)

    # ------------------------------------------------------------------------------------------

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor, gen_z: torch.Tensor,
                             gen_c: torch.Tensor, gain: float, cur_nimg: int, rng: RandomSource,
                             report: Report) -> None:
        """Forward and backward of one phase on one round of the batch; gradients accumulate in .grad."""
        assert phase in G_PHASES + D_PHASES
        if self.pl_weight == 0:
            phase = {"Greg": "none", "Gboth": "Gmain"}.get(phase, phase)
        if self.r1_gamma == 0:
            phase = {"Dreg": "none", "Dboth": "Dmain"}.get(phase, phase)
        sigma = blur_sigma(cur_nimg, self.blur_init_sigma, self.blur_fade_kimg)
        emas = phase in self.ema_phases

        if phase in ("Gmain", "Gboth"):
            gen_img, _ = self.run_G(gen_z, gen_c, rng, update_emas=emas)
            gen_logits = self.run_D(gen_img, gen_c, rng, sigma)
            report("Loss/scores/fake", gen_logits)
            report("Loss/signs/fake", gen_logits.sign())
            loss_g = torch.nn.functional.softplus(-gen_logits)       # -log sigmoid(D(G(z)))
            report("Loss/G/loss", loss_g)
            loss_g.mean().mul(gain).backward()

        if phase in ("Greg", "Gboth"):
            self._path_length(gen_z, gen_c, gain, rng, report, emas)

        loss_dgen = 0
        if phase in ("Dmain", "Dboth"):
            gen_img, _ = self.run_G(gen_z, gen_c, rng, update_emas=emas)
            gen_logits = self.run_D(gen_img, gen_c, rng, sigma)
            report("Loss/scores/fake", gen_logits)
            report("Loss/signs/fake", gen_logits.sign())
            loss_dgen = torch.nn.functional.softplus(gen_logits)     # -log(1 - sigmoid(D(G(z))))
            loss_dgen.mean().mul(gain).backward()

        if phase in ("Dmain", "Dreg", "Dboth"):
            self._real(phase, real_img, real_c, loss_dgen, gain, sigma, rng, report)

    def _path_length(self, gen_z, gen_c, gain, rng, report, emas):
        n = gen_z.shape[0] // self.pl_batch_shrink
        gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n], rng, update_emas=emas)
        h, w = gen_img.shape[2:]
        pl_noise = rng.randn(gen_img.shape).to(gen_img.device) / np.sqrt(h * w)
        pl_grads, = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True,
                                        only_inputs=True)
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        pl_penalty = (pl_lengths - pl_mean).square()
        report("Loss/pl_penalty", pl_penalty)
        loss_pl = pl_penalty * self.pl_weight
        report("Loss/G/reg", loss_pl)
        if self.zero_terms:
            loss_pl = gen_img[:, 0, 0, 0] * 0 + loss_pl
        loss_pl.mean().mul(gain).backward()

    def _real(self, phase, real_img, real_c, loss_dgen, gain, sigma, rng, report):
        r1 = phase in ("Dreg", "Dboth")
        real = real_img.detach().requires_grad_(r1)
        real_logits = self.run_D(real, real_c, rng, sigma)
        report("Loss/scores/real", real_logits)
        report("Loss/signs/real", real_logits.sign())
        loss_dreal = 0
        if phase in ("Dmain", "Dboth"):
            loss_dreal = torch.nn.functional.softplus(-real_logits)  # -log sigmoid(D(x))
            report("Loss/D/loss", loss_dgen + loss_dreal)
        loss_r1 = 0
        if r1:
            r1_grads, = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real], create_graph=True,
                                            only_inputs=True)
            r1_penalty = r1_grads.square().sum([1, 2, 3])
            loss_r1 = r1_penalty * (self.r1_gamma / 2)
            report("Loss/r1_penalty", r1_penalty)
            report("Loss/D/reg", loss_r1)
        loss = loss_dreal + loss_r1
        if self.zero_terms:
            loss = real_logits * 0 + loss
        loss.mean().mul(gain).backward()


def _unfused(G: torch.nn.Module) -> dict:
    """StyleGAN2 synthesis trains with per-sample scaling of activations, not grouped convolutions."""
    return {"fused_modconv": False} if G.synthesis.__class__.__module__.endswith("stylegan2") else {}
