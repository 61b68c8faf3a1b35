"""Training options (NVIDIA's train.py flags) -> the full training setup (NVIDIA's training_loop kwargs).

`--cfg` picks one of two NVIDIA code bases' recipes:

  * stylegan2-ada-pytorch: `auto` (settings derived from resolution and GPU count), `stylegan2`,
    `paper256`, `paper512`, `paper1024`, `cifar`; StyleGAN2 networks, style mixing 0.9, path
    length 2 (lazy, every 4), R1 (lazy, every 16), G_ema with those presets' half-lives;
  * stylegan3: `stylegan3-t`, `stylegan3-r` (`--gamma` and `--batch` required, as in NVIDIA's
    train.py); no style mixing or path length, R1 every 16, StyleGAN3-R blurs D's inputs at first.

`resolve(options, dataset)` returns a `TrainingSetup`, plain JSON that a run writes to
training_options.json and stores in every snapshot, so a resumed run continues with exactly it."""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from .augment import AUGPIPES

ADA_CFGS = ("auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar")
SG3_CFGS = ("stylegan3-t", "stylegan3-r")
CFGS = ADA_CFGS + SG3_CFGS

# stylegan2-ada-pytorch's presets: reference GPU count, kimg, batch, minibatch-std group, capacity
# (x 32768), learning rate, R1 gamma, G_ema half-life (kimg), its ramp-up, mapping depth.
ADA_SPECS = {
    "auto":      dict(ref_gpus=-1, kimg=25000, mb=-1, mbstd=-1, fmaps=-1, lrate=-1, gamma=-1, ema=-1, ramp=0.05, map=2),
    "stylegan2": dict(ref_gpus=8, kimg=25000, mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10, ramp=None, map=8),
    "paper256":  dict(ref_gpus=8, kimg=25000, mb=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20, ramp=None, map=8),
    "paper512":  dict(ref_gpus=8, kimg=25000, mb=64, mbstd=8, fmaps=1, lrate=0.0025, gamma=0.5, ema=20, ramp=None, map=8),
    "paper1024": dict(ref_gpus=8, kimg=25000, mb=32, mbstd=4, fmaps=1, lrate=0.002, gamma=2, ema=10, ramp=None, map=8),
    "cifar":     dict(ref_gpus=2, kimg=100000, mb=64, mbstd=32, fmaps=1, lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),
}
DEFAULT_METRICS = ("fid50k_full",)


class OptionError(ValueError):
    """An option (or combination) that cannot train; the message names the flag."""


@dataclass
class TrainingOptions:
    """What a user chooses: NVIDIA's train.py flags (None = the preset's value)."""
    data: str
    outdir: str = "training-runs"
    cfg: Optional[str] = None           # None: auto, or a fine-tuned StyleGAN3 network's config
    gpus: int = 1
    batch: Optional[int] = None
    batch_gpu: Optional[int] = None
    gamma: Optional[float] = None
    kimg: Optional[float] = None
    tick: float = 4
    snap: int = 50
    metrics: tuple = DEFAULT_METRICS
    seed: int = 0
    cond: bool = False
    mirror: bool = False
    subset: Optional[int] = None
    aug: str = "ada"
    p: Optional[float] = None
    target: Optional[float] = None
    augpipe: str = "bgc"
    resume: Optional[str] = None
    freezed: int = 0
    glr: Optional[float] = None
    dlr: Optional[float] = None
    map: Optional[int] = None
    cbase: Optional[int] = None
    cmax: Optional[int] = None
    mbstd_group: Optional[int] = None
    fp32: bool = False
    workers: int = 3
    desc: Optional[str] = None


@dataclass
class TrainingSetup:
    """Everything a run needs, resolved: NVIDIA's training_loop kwargs in our names (JSON-able)."""
    arch: str                          # 'stylegan2' | 'stylegan3'
    rules: str                         # 'stylegan2-ada' | 'stylegan3' (training/loss.py)
    G_kwargs: dict
    D_kwargs: dict
    G_opt: dict
    D_opt: dict
    loss_kwargs: dict
    augment_kwargs: Optional[dict]
    data: dict                         # path, resolution, use_labels, max_size, xflip, random_seed
    batch_size: int
    batch_gpu: int
    num_gpus: int
    total_kimg: float
    kimg_per_tick: float
    snapshot_ticks: int
    random_seed: int
    metrics: list
    ema_kimg: float
    ema_rampup: Optional[float] = 0.05
    G_reg_interval: Optional[int] = None
    D_reg_interval: Optional[int] = 16
    augment_p: float = 0.0
    ada_target: Optional[float] = None
    ada_interval: int = 4
    ada_kimg: float = 500
    resume: Optional[str] = None
    cfg: str = ""
    desc: str = ""
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TrainingSetup":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: copy.deepcopy(v) for k, v in d.items() if k in names})


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise OptionError(message)


def resolve(o: TrainingOptions, dataset, device_type: str = "cuda", pretrained=None) -> TrainingSetup:
    """Apply the preset and the overrides; `dataset` is the opened training set (resolution, labels, size),
    `pretrained` the loaded networks of `o.resume` when fine-tuning (their shapes are the run's)."""
    if o.cfg is None:
        o = dataclasses.replace(o, cfg=_family_cfg(pretrained))
    _check(o.cfg in CFGS, f"--cfg {o.cfg!r} is not one of {', '.join(CFGS)}")
    _check(o.gpus >= 1, "--gpus must be at least 1")
    _check(o.aug in ("ada", "noaug", "fixed"), f"--aug {o.aug!r} is not one of ada, noaug, fixed")
    _check(o.augpipe in AUGPIPES, f"--augpipe {o.augpipe!r} is not one of {', '.join(AUGPIPES)}")
    _check(o.snap >= 1, "--snap must be at least 1")
    _check(o.tick > 0, "--tick must be positive")
    _check(o.kimg is None or o.kimg > 0, "--kimg must be positive")
    _check(o.batch is None or o.batch >= 1, "--batch must be at least 1")
    _check(o.gamma is None or o.gamma >= 0, "--gamma must be non-negative")
    _check(o.freezed >= 0, "--freezed must be non-negative")
    if o.cond and not dataset.has_labels:
        raise OptionError(f"--cond needs labels, and {dataset.path} has no dataset.json with labels")
    res = dataset.resolution
    _check(res >= 4 and res & (res - 1) == 0,
           f"{dataset.path}: images are {res}x{res}; training needs a power-of-two size (4, 8, ..., 1024): "
           "make the data set with `stylegan dataset --resolution`")
    max_size = len(dataset)
    if o.subset is not None:
        _check(1 <= o.subset <= max_size, f"--subset must be between 1 and {max_size}")
        max_size = o.subset
    data = dict(path=str(dataset.path), resolution=res, use_labels=bool(o.cond), max_size=max_size,
                xflip=bool(o.mirror), random_seed=o.seed)
    c_dim = dataset.label_dim if o.cond else 0
    common = dict(c_dim=c_dim, img_resolution=res, img_channels=dataset.num_channels)
    s = _ada(o, res, common) if o.cfg in ADA_CFGS else _sg3(o, common)
    s.data = data
    _augment(o, s)
    if pretrained is not None:
        adopt_pretrained(s, pretrained, o)
    if o.resume is not None:
        s.resume = o.resume
        s.ada_kimg = 100                    # make ADA react faster at the beginning of a fine-tune
        s.ema_rampup = None
        s.loss_kwargs["blur_init_sigma"] = 0
    if o.fp32 or device_type != "cuda":
        # No mixed precision, so no clamp against fp16 overflow: the CPU trains in float32.
        for kw in (s.G_kwargs.setdefault("synthesis_kwargs", {}) if s.arch == "stylegan2" else s.G_kwargs, s.D_kwargs):
            kw["num_fp16_res"], kw["conv_clamp"] = 0, None
    _check(s.batch_size % s.num_gpus == 0, f"--batch {s.batch_size} is not divisible by --gpus {s.num_gpus}")
    _check(s.batch_size % (s.num_gpus * s.batch_gpu) == 0,
           f"--batch {s.batch_size} is not a multiple of --gpus times --batch-gpu ({s.num_gpus} x {s.batch_gpu})")
    mbstd = s.D_kwargs.get("epilogue_kwargs", {}).get("mbstd_group_size")
    _check(mbstd is None or s.batch_gpu % min(mbstd, s.batch_gpu) == 0,
           f"--batch-gpu {s.batch_gpu} must be a multiple of the minibatch-std group size {mbstd} (--mbstd-group)")
    s.kimg_per_tick, s.snapshot_ticks, s.random_seed = o.tick, o.snap, o.seed
    s.metrics = list(o.metrics)
    s.cfg = o.cfg
    s.extra["workers"] = o.workers
    name = dataset.path.stem if hasattr(dataset.path, "stem") else "data"
    s.desc = f"{o.cfg}-{name}-gpus{s.num_gpus}-batch{s.batch_size}-gamma{s.loss_kwargs['r1_gamma']:g}" + \
        (f"-{o.desc}" if o.desc else "")
    return s


def _family_cfg(pretrained) -> str:
    """--cfg when not given: auto, or stylegan3-t/-r when fine-tuning a StyleGAN3 network."""
    G = None if pretrained is None else (pretrained.G if pretrained.G is not None else pretrained.G_ema)
    if G is None or G.arch != "stylegan3":
        return "auto"
    return "stylegan3-r" if G.init_kwargs.get("use_radial_filters") else "stylegan3-t"


def adopt_pretrained(s: TrainingSetup, nets, o: TrainingOptions) -> None:
    """Fine-tuning: G and D take the pretrained networks' shapes (depth, capacity, z and w sizes), the
    run keeps its precision, labels and minibatch-std group. Resolution must be the data set's."""
    name = o.resume
    G = nets.G if nets.G is not None else nets.G_ema
    _check(G is not None, f"{name}: holds no generator to fine-tune")
    _check(G.arch == s.arch, f"{name}: a {G.arch} network, and --cfg {o.cfg} trains {s.arch}: "
                             f"pick a {G.arch} --cfg (or leave --cfg out)")
    for flag, value in (("--cbase", o.cbase), ("--cmax", o.cmax), ("--map", o.map)):
        _check(value is None, f"{flag}: a fine-tuned network keeps the shape of {name}; leave {flag} out")
    gk = copy.deepcopy(G.init_kwargs)
    res, channels = s.G_kwargs["img_resolution"], s.G_kwargs["img_channels"]
    _check(gk["img_resolution"] == res, f"{name} makes {gk['img_resolution']} px images and the data set has {res} px: "
                                        "transfer to another resolution is not supported (resize the data set)")
    _check(gk["img_channels"] == channels, f"{name} makes {gk['img_channels']}-channel images and the data set "
                                           f"has {channels}")
    precision = ("num_fp16_res", "conv_clamp")
    if s.arch == "stylegan2":
        gk["synthesis_kwargs"].update({k: s.G_kwargs["synthesis_kwargs"][k] for k in precision})
    else:
        gk.update({k: s.G_kwargs[k] for k in precision + ("magnitude_ema_beta",) if k in s.G_kwargs})
    gk["c_dim"] = s.G_kwargs["c_dim"]
    s.G_kwargs = gk
    if nets.D is not None:
        dk = copy.deepcopy(nets.D.init_kwargs)
        dk.update({k: s.D_kwargs[k] for k in precision + ("c_dim",)})
        dk["block_kwargs"] = {**dk.get("block_kwargs", {}), **s.D_kwargs["block_kwargs"]}
        dk["epilogue_kwargs"] = {**dk.get("epilogue_kwargs", {}), **s.D_kwargs["epilogue_kwargs"]}
        s.D_kwargs = dk
    else:
        # A generator-only file: D is trained from scratch with the generator's capacity.
        synthesis = gk.get("synthesis_kwargs", gk)
        s.D_kwargs.update(channel_base=synthesis.get("channel_base", s.D_kwargs["channel_base"]),
                          channel_max=synthesis.get("channel_max", s.D_kwargs["channel_max"]))


def _ada(o: TrainingOptions, res: int, common: dict) -> TrainingSetup:
    spec = dict(ADA_SPECS[o.cfg])
    gpus = o.gpus
    if o.cfg == "auto":
        spec["ref_gpus"] = gpus
        spec["mb"] = max(min(gpus * min(4096 // res, 32), 64), gpus)
        spec["mbstd"] = min(spec["mb"] // gpus, 4)
        spec["fmaps"] = 1 if res >= 512 else 0.5
        spec["lrate"] = 0.002 if res >= 1024 else 0.0025
        spec["gamma"] = 0.0002 * (res ** 2) / spec["mb"]
        spec["ema"] = spec["mb"] * 10 / 32
    cbase = o.cbase if o.cbase is not None else int(spec["fmaps"] * 32768)
    cmax = o.cmax if o.cmax is not None else 512
    synthesis = dict(channel_base=cbase, channel_max=cmax, num_fp16_res=4, conv_clamp=256)
    G = dict(z_dim=512, w_dim=512, **common, mapping_kwargs=dict(num_layers=o.map or spec["map"]),
             synthesis_kwargs=synthesis)
    D = dict(**common, channel_base=cbase, channel_max=cmax, num_fp16_res=4, conv_clamp=256,
             block_kwargs=dict(freeze_layers=o.freezed), mapping_kwargs={},
             epilogue_kwargs=dict(mbstd_group_size=o.mbstd_group or spec["mbstd"]))
    loss = dict(r1_gamma=spec["gamma"] if o.gamma is None else o.gamma, style_mixing_prob=0.9, pl_weight=2,
                pl_batch_shrink=2, pl_decay=0.01)
    if o.cfg == "cifar":
        loss.update(pl_weight=0, style_mixing_prob=0)
        D["architecture"] = "orig"
    batch, batch_gpu = spec["mb"], spec["mb"] // spec["ref_gpus"]
    if o.batch is not None:
        batch, batch_gpu = o.batch, o.batch // gpus
    if o.batch_gpu is not None:
        batch_gpu = o.batch_gpu
    adam = dict(betas=[0, 0.99], eps=1e-8)
    return TrainingSetup(
        arch="stylegan2", rules="stylegan2-ada", G_kwargs=G, D_kwargs=D,
        G_opt=dict(lr=o.glr if o.glr is not None else spec["lrate"], **adam),
        D_opt=dict(lr=o.dlr if o.dlr is not None else spec["lrate"], **adam),
        loss_kwargs=loss, augment_kwargs=None, data={}, batch_size=batch, batch_gpu=max(batch_gpu, 1),
        num_gpus=gpus, total_kimg=o.kimg if o.kimg is not None else spec["kimg"], kimg_per_tick=o.tick,
        snapshot_ticks=o.snap, random_seed=o.seed, metrics=[], ema_kimg=spec["ema"], ema_rampup=spec["ramp"],
        G_reg_interval=4, D_reg_interval=16)


def _sg3(o: TrainingOptions, common: dict) -> TrainingSetup:
    _check(o.gamma is not None, f"--cfg {o.cfg} needs --gamma (R1 weight; NVIDIA's: 2 at 256 px, 8.2 at 512, "
                                "32 at 1024 for FFHQ)")
    _check(o.batch is not None, f"--cfg {o.cfg} needs --batch (NVIDIA's: 32)")
    batch = o.batch
    cbase, cmax = o.cbase or 32768, o.cmax or 512
    G = dict(z_dim=512, w_dim=512, **common, mapping_kwargs=dict(num_layers=o.map or 2),
             channel_base=cbase, channel_max=cmax, magnitude_ema_beta=0.5 ** (batch / (20 * 1e3)),
             num_fp16_res=4, conv_clamp=256)
    loss = dict(r1_gamma=o.gamma)
    if o.cfg == "stylegan3-r":
        G.update(conv_kernel=1, channel_base=cbase * 2, channel_max=cmax * 2, use_radial_filters=True)
        loss.update(blur_init_sigma=10, blur_fade_kimg=batch * 200 / 32)
    D = dict(**common, channel_base=cbase, channel_max=cmax, num_fp16_res=4, conv_clamp=256,
             block_kwargs=dict(freeze_layers=o.freezed), mapping_kwargs={},
             epilogue_kwargs=dict(mbstd_group_size=o.mbstd_group or 4))
    adam = dict(betas=[0, 0.99], eps=1e-8)
    return TrainingSetup(
        arch="stylegan3", rules="stylegan3", G_kwargs=G, D_kwargs=D,
        G_opt=dict(lr=o.glr if o.glr is not None else 0.0025, **adam),
        D_opt=dict(lr=o.dlr if o.dlr is not None else 0.002, **adam),
        loss_kwargs=loss, augment_kwargs=None, data={}, batch_size=batch, batch_gpu=o.batch_gpu or batch // o.gpus,
        num_gpus=o.gpus, total_kimg=o.kimg if o.kimg is not None else 25000, kimg_per_tick=o.tick,
        snapshot_ticks=o.snap, random_seed=o.seed, metrics=[], ema_kimg=batch * 10 / 32, ema_rampup=0.05,
        G_reg_interval=None, D_reg_interval=16)


def _augment(o: TrainingOptions, s: TrainingSetup) -> None:
    if o.aug == "noaug":
        _check(o.p is None and o.target is None, "--p and --target need --aug ada or fixed")
        return
    s.augment_kwargs = dict(AUGPIPES[o.augpipe])
    if o.aug == "ada":
        _check(o.p is None, "--p is the probability of --aug fixed (ADA starts from 0 and adapts)")
        _check(o.target is None or 0 <= o.target <= 1, "--target must be between 0 and 1")
        s.ada_target = 0.6 if o.target is None else o.target
    else:
        _check(o.target is None, "--target steers --aug ada, not --aug fixed")
        p = o.p if o.p is not None else (0.2 if o.cfg in SG3_CFGS else None)
        _check(p is not None, "--aug fixed needs --p (the augmentation probability)")
        _check(0 <= p <= 1, "--p must be between 0 and 1")
        s.augment_p = p

