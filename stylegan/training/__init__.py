"""Training: NVIDIA's StyleGAN2-ADA and StyleGAN3 loops on our networks and ops.

`augment` (ADA's pipeline), `loss` (the objective, one phase at a time), `trainer` (one iteration:
phases, lazy regularisation, Adam, G_ema, ADA), `rng` (the random source every draw goes through),
`stats` (NVIDIA's training statistics)."""
from .augment import AUGPIPES, AugmentPipe
from .loss import StyleGAN2Loss
from .rng import GlobalRandom, RandomSource, Replay, TorchRandom
from .stats import Collector, Stats
from .trainer import Phase, Trainer, make_phases

__all__ = ["AUGPIPES", "AugmentPipe", "StyleGAN2Loss", "RandomSource", "TorchRandom", "GlobalRandom", "Replay",
           "Stats", "Collector", "Trainer", "Phase", "make_phases"]
