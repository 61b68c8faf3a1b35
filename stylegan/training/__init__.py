"""Training: NVIDIA's StyleGAN2-ADA and StyleGAN3 loops on our networks and ops.

`loop` (the story: `train`, `resume_training`), `config` (train.py's presets and flags -> a setup),
`trainer` (one iteration: phases, lazy regularisation, Adam, G_ema, ADA), `loss` (the objective, one
phase at a time), `augment` (ADA's pipeline), `rng` (the random source every draw goes through),
`data` (NVIDIA's sampler, grids), `snapshot` (the snapshot file), `resume` (fine-tuning from a
network), `stats` (NVIDIA's training statistics)."""
from .augment import AUGPIPES, AugmentPipe
from .config import TrainingOptions, TrainingSetup
from .loop import TrainingError, TrainingResult, resume_training, train
from .loss import StyleGAN2Loss
from .rng import GlobalRandom, RandomSource, Replay, TorchRandom
from .stats import Collector, Stats
from .trainer import Phase, Trainer, make_phases

__all__ = ["train", "resume_training", "TrainingOptions", "TrainingSetup", "TrainingResult", "TrainingError",
           "AUGPIPES", "AugmentPipe", "StyleGAN2Loss", "RandomSource", "TorchRandom", "GlobalRandom", "Replay",
           "Stats", "Collector", "Trainer", "Phase", "make_phases"]
