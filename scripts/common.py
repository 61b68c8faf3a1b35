"""Option parsing shared by the commands; turns library errors into one-line CLI errors."""
from __future__ import annotations

import os
from pathlib import Path

import click
import torch

from stylegan.progress import format_bytes, format_time, reporting


class IntList(click.ParamType):
    """'0-99,200,300-310' -> 0, ..., 99, 200, 300, ..., 310, held lazily as ranges; repeats are
    dropped unless `unique=False` (key seeds of a walk may repeat)."""
    name = "list"

    def __init__(self, unique: bool = True):
        self.unique = unique

    def convert(self, value, param, ctx):
        from stylegan.seeds import parse_int_list
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


def load_networks(network: str, device: torch.device | str = "cpu", trainable: bool = False,
                  generator: bool = True):
    """Path, URL or model-zoo name -> stylegan.load's LoadedModel; errors become one line. With
    `generator` (the default) the file must hold one: `nets.generator` is then safe to use. An
    architecture name (`stylegan2-256`) gives random weights, with one line that says so."""
    import stylegan
    try:
        nets = stylegan.load(network, device=device, trainable=trainable, untrained=True)
        if generator:
            _announce_cpu_kernel(nets.generator, torch.device(device))
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    if nets.format == "untrained":
        say_untrained(network)
    return nets


def say_untrained(network: str) -> None:
    click.echo(f"{network}: an architecture with random weights, for trying the tools out: its faces will be "
               f"noise (`stylegan models` lists trained networks)", err=True)


def load_generator(network: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The inference generator (G_ema, else G) of a network, on `device`."""
    return load_networks(network, device).generator


def _announce_cpu_kernel(G: torch.nn.Module, device: torch.device) -> None:
    """On the CPU, the generator's kernel compiles at the first image (about 30 s, once per
    machine): say so before that pause rather than stall in silence."""
    import ops
    if device.type != "cpu":
        return
    if any(ops.cpu_status(k).impl == "cpu" and ops.cpu_cached(k) is None for k in G.describe().cpu_kernels):
        click.echo("compiling the CPU kernel for this CPU (once, about 30 s; "
                   "`stylegan ops build --cpu-only` does it ahead of time)...", err=True)


# The library's parameters as the commands spell them: the one place where library errors that name
# a parameter (ParamError) and run records that differ (RunMismatchError.differences) meet the flags.
FLAGS = {
    "network": "--network", "psi": "--trunc", "truncation_cutoff": "--trunc-cutoff", "noise_mode": "--noise-mode",
    "class_idx": "--class", "format": "--format", "fmt": "--format", "batch_size": "--batch", "overwrite": "--overwrite",
    "outdir": "--outdir", "force": "--force", "trust_code": "--trust-code", "max_pixels": "--max-pixels",
    # projection (pipelines/project.py, pipelines/photo.py): `project` and `edit --photo`
    "space": "--space", "steps": "--steps", "num_steps": "--steps", "seed": "--seed", "loss": "--loss",
    "pti_steps": "--pti-steps", "photo": "--photo", "face": "--face",
    # videos (pipelines/interpolate.py)
    "frames_per_seed": "--frames-per-seed",
    # image sets and edits (run records: io/run_record.py, pipelines/edit.py)
    "pose": "--translate/--rotate", "inputs": "the inputs (--seeds, --latent, --photo)", "edits": "--edit",
    "paste_back": "--paste-back", "strip": "the strips' layout (strength captions)",
    # data sets (stylegan.data.make_dataset): `dataset`
    "source": "SOURCE", "resolution": "--resolution", "transform": "--transform", "resize_filter": "--resize-filter",
    "channels": "channels (--rgb)", "align": "--align", "all_faces": "--all-faces", "detector": "--detector",
    "labels": "--labels", "max_images": "--max-images", "skip_bad": "--skip-bad",
}


def flag(name: str, value: str | None = None) -> str:
    """A library argument as the command line gives it: overwrite=True -> --overwrite, resolution=N ->
    --resolution N; an argument without a flag keeps the library's spelling."""
    if name not in FLAGS:
        return name if value is None else f"{name}={value}"
    return FLAGS[name] if value in (None, "True") else f"{FLAGS[name]} {value}"


def cli_error(e: Exception) -> click.ClickException:
    """A library error as a one-line CLI error; the parameters it names are said as flags."""
    from stylegan._errors import ParamError
    return click.ClickException(e.say(flag) if isinstance(e, ParamError) else str(e))


class ProgressPrinter:
    """The library's Progress events on stderr, for every command: on a terminal a bar per stage
    (with its count, time left and the event's stats); elsewhere (a log file, CI, nohup, a pipe) a
    line at every `1 / lines` of a stage, with its count, stats and time left, so a log shows how far
    a run got and how fast. A stage's first `quiet` seconds print nothing in a log: a stage over in
    an instant adds no lines before the command's summary (or its one-line error). `labels` names
    stages for people ({'scan': 'reading headers'}); stages named in `each` (training's ticks) get
    a line for every event. Stages named in `in_bytes` (downloads) count bytes: amounts and rate are
    shown as '12.0 MiB/45.0 MiB at 3.1 MiB/s', a finished one always gets its line in a log, and one
    of unknown size gets a line every `every_s` seconds. A context manager: within it, the printer is
    also the sink for stories no progress argument reaches (stylegan.progress.reporting: downloads), so
    they share its bars; leaving it ends an open bar."""

    def __init__(self, file=None, lines: int = 20, labels: dict[str, str] | None = None, quiet: float = 2.0,
                 each: tuple[str, ...] = (), in_bytes: tuple[str, ...] = ("download",), every_s: float = 10.0):
        self.file = file or click.get_text_stream("stderr")
        self.tty = bool(getattr(self.file, "isatty", lambda: False)())
        self.lines, self.labels, self.quiet, self.each = lines, labels or {}, quiet, each
        self.in_bytes, self.every_s = in_bytes, every_s
        self.stage, self.done, self.bar, self.said = None, 0, None, -1
        self._entered = []

    def __call__(self, event) -> None:
        if event.stage != self.stage:
            self.close()
            self.stage, self.done, self.said = event.stage, 0, -1
        label = self.labels.get(event.stage, event.stage)
        stats = "  ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in event.stats.items())
        nbytes = event.stage in self.in_bytes
        if self.tty and event.total:
            if self.bar is None:
                # A byte count is said by `_count` (human units), not as the bar's raw position.
                self.bar = click.progressbar(length=event.total, label=f"{label:8s}", file=self.file,
                                             show_pos=not nbytes, item_show_func=lambda s: s)
            shown = "  ".join(p for p in (self._count(event), event.item) if p) if nbytes else stats
            self.bar.update(event.done - self.done, shown)
        else:
            # Integer arithmetic: which `1 / lines` of the stage this event reached; a byte stage of
            # unknown size counts periods of `every_s` instead (a line per chunk would flood a log).
            if nbytes and not event.total:
                part, due = int(event.seconds // self.every_s), event.seconds >= self.quiet
            elif event.stage in self.each or not event.total:
                part, due = event.done, True
            else:
                part, due = event.done * self.lines // event.total, event.seconds >= self.quiet
            # A finished download is said even when quick: it is rare, and the log should show what
            # came over the network.
            finished = nbytes and event.total and event.done >= event.total
            if part > self.said and (due or finished):
                self.said = part
                click.echo(self._line(label, event, stats), file=self.file)
        self.done = event.done
        if event.total and event.done >= event.total:
            self.close()

    def _line(self, label: str, event, stats: str) -> str:
        unfinished = event.total and 0 < event.done < event.total
        left = f"{format_time(event.seconds / event.done * (event.total - event.done))} left" if unfinished else ""
        return "  ".join(p for p in (f"{label:8s} {self._count(event)}", stats, left, event.item or "") if p)

    def _count(self, event) -> str:
        """'3/20', or for a byte stage '12.0 MiB/45.0 MiB at 3.1 MiB/s'."""
        if event.stage not in self.in_bytes:
            return f"{event.done}/{event.total}" if event.total else str(event.done)
        amount = format_bytes(event.done) + (f"/{format_bytes(event.total)}" if event.total else "")
        return f"{amount} at {format_bytes(event.done / event.seconds)}/s" if event.seconds > 0 else amount

    def close(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()
            self.bar = None

    def __enter__(self) -> "ProgressPrinter":
        self._entered.append(reporting(self))
        self._entered[-1].__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        self._entered.pop().__exit__(None, None, None)


def loss_name(loss: str) -> str:
    """--loss for the run record: a file by its absolute path, so two spellings of it agree."""
    return str(Path(loss).resolve()) if Path(loss).is_file() else loss


def loss_factory_for(loss: str, nets, device, trust_code: bool = False, net=None):
    """--loss -> a function making a fresh Distance per use (a loss holds its targets). `net`: the
    feature network already read by `feature_net_for`."""
    from stylegan.inversion.losses import FeatureDistance, default_distance
    if loss == "auto":
        D = nets["D"] if "D" in nets else None
        return lambda: default_distance(D)
    net = net or feature_net_for(loss, device, trust_code)      # registry names are fetched (once) from there
    return lambda: FeatureDistance(net)


def feature_net_for(loss: str, device, trust_code: bool = False):
    """--loss's feature network; a file that is code (TorchScript not known by its digest) is refused
    in one line unless --trust-code."""
    from stylegan.inversion import load_feature_net
    try:
        return load_feature_net(loss, device, trust_code=trust_code)
    except ValueError as e:
        raise cli_error(e) from None


def loss_file_first(loss: str, device, trust_code: bool = False):
    """A --loss given as a file, read (and refused) before anything is written or downloaded; None
    for 'auto' and registry names."""
    return feature_net_for(loss, device, trust_code) if loss != "auto" and Path(loss).exists() else None


def trust_code_option(f):
    return click.option("--trust-code", is_flag=True,
                        help="Let a --loss TorchScript file that is not a known network run: this EXECUTES CODE "
                             "FROM THE FILE, with your rights. Only for files from a source you trust.")(f)


def run_mismatch_error(e, outdir=None) -> click.ClickException:
    """A RunMismatchError (a folder, or a file kept in it, made with other settings) as one line
    naming the flags that differ."""
    said = []
    for k, (then, now) in e.differences.items():
        where, then, now = _first_difference(then, now)
        said.append(f"{FLAGS.get(k, k)}{where} {_setting(then)}, not {_setting(now)}")
    return click.ClickException(f"{outdir or e.outdir} was made with {', '.join(said)}: "
                                "use another --outdir or --overwrite")


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
    from stylegan.io.files import ensure_writable_dir
    try:
        ensure_writable_dir(outdir)
    except ValueError as e:
        raise click.ClickException(str(e)) from None


def provenance_options(f):
    """--no-watermark and --sign KEY CERT, for every command that writes synthetic images."""
    f = click.option("--sign", nargs=2, type=click.Path(dir_okay=False), default=None, metavar="KEY CERT",
                     help="Sign each image with a C2PA manifest: a PEM private key and its certificate chain "
                          "(or set STYLEGAN_SIGN_KEY and STYLEGAN_SIGN_CERT). Needs `pip install \"stylegan[sign]\"`.")(f)
    f = click.option("--no-watermark", is_flag=True,
                     help="Leave out the invisible watermark (the metadata that says the image is synthetic stays).")(f)
    return f


def base_provenance(network: str | None, no_watermark: bool = False, sign=None):
    """What the command knows of every image it writes: the network as the user named it (a file by
    its name only: a folder path says more about the user than about the image; None where the
    command makes the network, as training does), the watermark choice, the signer. Bad key or
    certificate files are one line, before any work."""
    from stylegan.provenance import Provenance, Signer, source_name
    try:
        signer = Signer.from_files(*sign) if sign else Signer.from_env()
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    source = None if network is None else source_name(network)
    return Provenance(network_source=source, watermark=not no_watermark, signer=signer)
