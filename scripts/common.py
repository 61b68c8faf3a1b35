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


def progress_printer(min_interval: float = 30.0):
    """A ProgressFn for the terminal: a bar with an ETA per (stage, item) when stderr is a terminal,
    else one log line per `min_interval` seconds and at each end (readable in a log file)."""
    import sys
    import time

    from stylegan.progress import format_time
    state = {"key": None, "bar": None, "last": 0.0}
    tty = sys.stderr.isatty()

    def show(p):
        key = (p.stage, p.item)
        label = f"{p.stage}: {p.item}" if p.item else p.stage
        if state["key"] != key:
            if state["bar"] is not None:
                state["bar"].render_finish()
            state.update(key=key, bar=None, done=0, last=0.0)
            if tty and p.total:
                state["bar"] = click.progressbar(length=p.total, label=label, file=sys.stderr, show_pos=True)
        if state["bar"] is not None:
            state["bar"].update(p.done - state["done"])
            state["done"] = p.done
            if p.total and p.done >= p.total:
                state["bar"].render_finish()
                state["bar"] = None
            return
        now = time.time()
        if now - state["last"] >= min_interval or (p.total and p.done >= p.total):
            state["last"] = now
            eta = ""
            if p.total and p.done and p.done < p.total:
                eta = f", ETA {format_time(p.seconds * (p.total - p.done) / p.done)}"
            click.echo(f"{label}: {p.done}/{p.total or '?'} ({format_time(p.seconds)}{eta})", err=True)
    return show

