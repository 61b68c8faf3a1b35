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


def max_pixels_option(f):
    """--max-pixels: the photo size budget, checked from the header before decoding (faces/photo.py)."""
    from stylegan.faces.photo import BYTES_PER_PIXEL, MAX_PIXELS
    return click.option("--max-pixels", type=click.IntRange(min=1), default=MAX_PIXELS, show_default=True,
                        help=f"Refuse photos with more pixels, before decoding them (about {BYTES_PER_PIXEL} "
                             f"bytes of memory per pixel to align or project).")(f)


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
               ("pass overwrite=True", "--overwrite"), ("another output folder", "another --outdir"),
               ("pass trust_code=True", "pass --trust-code"), ("max_pixels", "--max-pixels"),
               ("pass force=True", "pass --force"))


def flag_words(text: str) -> str:
    """The library's argument names in a message, as the command line's flags."""
    for word, flag in _FLAG_WORDS:
        text = text.replace(word, flag)
    return text


def cli_error(e: Exception) -> click.ClickException:
    """A library ValueError as a one-line CLI error, in flag words."""
    return click.ClickException(flag_words(str(e)))


def run_mismatch_error(e, outdir, flags: dict[str, str]) -> click.ClickException:
    """A RunMismatchError (a folder made with other settings) as one line naming the flags that differ."""
    said = []
    for k, (then, now) in e.differences.items():
        where, then, now = _first_difference(then, now)
        said.append(f"{flags.get(k, k)}{where} {_setting(then)}, not {_setting(now)}")
    return click.ClickException(f"{outdir} was made with {', '.join(said)}: use another --outdir or --overwrite")


def _first_difference(a, b, where: str = "") -> tuple[str, object, object]:
    """Where two nested settings (edits, inputs) first differ: (' 2 strengths', a's, b's)."""
    if isinstance(a, dict) and isinstance(b, dict):
        key = next((k for k in [*a, *b] if a.get(k) != b.get(k)), None)
        return (where, a, b) if key is None else _first_difference(a.get(key), b.get(key), f"{where} {key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and any(isinstance(v, dict) for v in a):
        i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
        return _first_difference(a[i], b[i], f"{where} {i + 1}")
    return where, a, b


def _setting(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, (dict, list)):
        import json
        text = json.dumps(v, separators=(",", ":"))
        return text if len(text) <= 60 else text[:57] + "..."
    return f"(digest {v[:12]}...)" if isinstance(v, str) and len(v) > 16 else str(v)   # its head suffices


def check_outdir(outdir) -> None:
    """Create the output folder and make sure files can be written there, before any model is loaded."""
    from stylegan._files import ensure_writable_dir
    try:
        ensure_writable_dir(outdir)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
