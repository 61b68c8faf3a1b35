"""Option parsing shared by the commands; turns library errors into one-line CLI errors."""
from __future__ import annotations

import os

import click
import torch


class IntList(click.ParamType):
    """'0-99,200,300-310' -> 0, ..., 99, 200, 300, ..., 310, held lazily as ranges; repeats are
    dropped unless `unique=False` (key seeds of a walk may repeat)."""
    name = "list"

    def __init__(self, unique: bool = True):
        self.unique = unique

    def convert(self, value, param, ctx):
        from stylegan.pipelines.latents import parse_int_list
        try:
            return parse_int_list(value, self.unique)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class Grid(click.ParamType):
    """'4x8' -> (4, 8)."""
    name = "RxC"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            r, c = (int(v) for v in value.lower().split("x"))
            assert r > 0 and c > 0
            return r, c
        except (ValueError, AssertionError):
            self.fail(f"bad grid {value!r}: expected ROWSxCOLS, e.g. 4x8", param, ctx)


class FloatPair(click.ParamType):
    """'0.3,-0.2' -> (0.3, -0.2)."""
    name = "X,Y"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            x, y = (float(v) for v in value.split(","))
            return x, y
        except ValueError:
            self.fail(f"bad pair {value!r}: expected two numbers, e.g. 0.3,-0.2", param, ctx)


def pose_options(f):
    """--translate and --rotate: StyleGAN3's input transform, as NVIDIA's gen_images.py takes them."""
    f = click.option("--rotate", type=float, default=None, metavar="DEG", help="StyleGAN3: rotate the image by DEG degrees.")(f)
    return click.option("--translate", type=FloatPair(), default=None,
                        help="StyleGAN3: shift the image by X,Y (the image spans about 1).")(f)


def pose(translate, rotate):
    """The input transform for --translate / --rotate, None when neither is given."""
    if translate is None and rotate is None:
        return None
    from stylegan.networks.stylegan3 import pose_transform
    return pose_transform(translate or (0.0, 0.0), rotate or 0.0)


def resolve_device(name: str) -> torch.device:
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    base = name.split(":")[0]
    if base not in available:
        raise click.BadParameter(f"unknown device {name!r}: expected cpu, cuda or mps", param_hint="--device")
    if not available[base]:
        raise click.BadParameter(f"device {name!r} is not available on this machine", param_hint="--device")
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # one GPU per torchrun rank
    return torch.device(name)


def load_networks(network: str, device: torch.device | str = "cpu", trainable: bool = False):
    """Path, URL or model-zoo name -> stylegan.load's LoadedModel; errors become one line."""
    import stylegan
    try:
        return stylegan.load(network, device=device, trainable=trainable)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None


def load_generator(network: str, device: torch.device) -> torch.nn.Module:
    """The inference generator (G_ema, else G) of a network, on `device`."""
    nets = load_networks(network, device)
    try:
        G = nets.generator
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    _announce_cpu_kernel(G, device)
    return G


def _announce_cpu_kernel(G: torch.nn.Module, device: torch.device) -> None:
    """On the CPU, the generator's kernel compiles at the first image (about 30 s, once per
    machine): say so before that pause rather than stall in silence."""
    import ops
    from stylegan.networks import stylegan2, stylegan3
    kernel = {stylegan3.Generator: "filtered_lrelu", stylegan2.Generator: "conv3x3"}.get(type(G))
    if device.type != "cpu" or kernel is None:
        return
    if ops.cpu_status(kernel).impl == "cpu" and ops.cpu_cached(kernel) is None:
        click.echo("compiling the CPU kernel for this CPU (once, about 30 s; "
                   "`stylegan ops build --cpu-only` does it ahead of time)...", err=True)


# The library names its arguments; the command line names its flags.
_FLAG_WORDS = (("class_idx", "--class"), ("truncation_cutoff", "--trunc-cutoff"), ("batch_size", "--batch"),
               ("pass overwrite=True", "--overwrite"), ("another output folder", "another --outdir"))


def cli_error(e: Exception) -> click.ClickException:
    """A library ValueError as a one-line CLI error, in flag words."""
    text = str(e)
    for word, flag in _FLAG_WORDS:
        text = text.replace(word, flag)
    return click.ClickException(text)


def run_mismatch_error(e, outdir, flags: dict[str, str]) -> click.ClickException:
    """A RunMismatchError (a folder made with other settings) as one line naming the flags that differ."""
    said = ", ".join(f"{flags.get(k, k)} {_setting(then)}, not {_setting(now)}"
                     for k, (then, now) in e.differences.items())
    return click.ClickException(f"{outdir} was made with {said}: use another --outdir or --overwrite")


def _setting(v) -> str:
    if v is None:
        return "none"
    return f"(digest {v[:12]}...)" if isinstance(v, str) and len(v) > 16 else str(v)   # its head suffices


def check_outdir(outdir) -> None:
    """Create the output folder and make sure files can be written there, before any model is loaded."""
    from stylegan._files import ensure_writable_dir
    try:
        ensure_writable_dir(outdir)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
