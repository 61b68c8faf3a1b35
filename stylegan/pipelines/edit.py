"""Edits as images: each input latent moved along each direction by each strength.

An edit is written `SOURCE[:K][@ROWS]:STRENGTHS`: SOURCE a direction file or a method computed
on the spot ('sefa', 'ganspace'); K the component (default 0); ROWS the ws rows it moves (e.g.
0-3; default: the direction's own, else all); STRENGTHS one number, a list (-2,0,2) or a range
A..B (spread over `values` strengths). E.g. `smile.npy:-3..3`, `sefa:2@0-3:5`, `pca.direction:1:-2,2`.

`write_edits` writes them as a resumable folder, like an image set: a run record of what decides
the pixels (network, and per input and per edit what made it: a later run may add inputs and
edits, never change one), outputs already whole are skipped, a strip and its video land together
or not at all, and each output is claimed while it is made, so two runs on one folder share the
work. What is held in memory at once is sized before anything is rendered."""
from __future__ import annotations

import os
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .._errors import with_prefix
from ..images import caption_band, caption_height
from .._memory import check_held
from ..editing import Direction, Move, edit, edit_many, ganspace, load_direction, sefa
from ..editing.directions import check_direction
from ..io.files import all_or_none, claim, is_complete, name_fits
from ..io.run_record import check_run_record, prepare_outdir
from ..seeds import parse_int_list
from ..progress import Progress, ProgressFn, emit
from ..provenance import Provenance, file_digest
from .checks import check_noise_mode

METHODS = ("sefa", "ganspace")
# The run record's entries a later run may add to (see edit_settings).
GROWS = ("inputs", "edits")
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_STRENGTHS = re.compile(rf"^(?:{_NUMBER}\.\.{_NUMBER}|{_NUMBER}(?:,{_NUMBER})*)$")


class Linspace(Sequence[float]):
    """`values` numbers from lo to hi, as np.linspace gives them, computed when read: a strength
    range costs nothing until its size has been checked against the memory budget."""

    def __init__(self, lo: float, hi: float, values: int):
        self.lo, self.hi, self.values = float(lo), float(hi), int(values)

    def __len__(self) -> int:
        return self.values

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.values))]
        i = i + self.values if i < 0 else i
        if not 0 <= i < self.values:
            raise IndexError("strength index out of range")
        if i == self.values - 1:
            return self.hi
        return i * ((self.hi - self.lo) / (self.values - 1)) + self.lo if self.values > 1 else self.lo

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"{self.lo:g}..{self.hi:g} ({self.values} values)"


@dataclass
class EditSpec:
    source: str
    component: int
    rows: list[int] | None
    strengths: Sequence[float]

    @property
    def label(self) -> str:
        """The edit in output names: 'sefa1_rows0-3' for sefa:1@0-3 (no '@', which shells and some
        file systems and web servers treat specially)."""
        name = Path(self.source).stem if self.source not in METHODS else self.source
        rows = f"_rows{self.rows[0]}-{self.rows[-1]}" if self.rows else ""
        return f"{name}{self.component}{rows}"

    def text(self, source: str | None = None) -> str:
        """The spec as `--edit` takes it (parse_edit(spec.text()) == spec), naming `source` instead
        of the spec's own when given (a file under another name). Strengths are written exactly."""
        rows = f"@{format_int_list(self.rows)}" if self.rows else ""
        strengths = ",".join(repr(float(v)) for v in self.strengths)
        return f"{source or self.source}:{self.component}{rows}:{strengths}"


def format_int_list(values: Sequence[int]) -> str:
    """[0, 1, 2, 3, 7] -> '0-3,7': the inverse of parse_int_list for a list without repeats."""
    parts, run = [], []
    for v in values:
        if run and v == run[-1] + 1:
            run.append(v)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [v]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


def parse_strengths(text: str, values: int = 7) -> Sequence[float]:
    if not _STRENGTHS.match(text):
        raise ValueError(f"bad strengths {text!r}: expected e.g. 3, -2,0,2 or -3..3")
    if ".." in text:
        lo, hi = (float(v) for v in text.split(".."))
        return Linspace(lo, hi, values)
    return [float(v) for v in text.split(",")]


def parse_edit(spec: str, values: int = 7) -> EditSpec:
    """'SOURCE[:K][@ROWS]:STRENGTHS' -> EditSpec (see the module doc)."""
    head, sep, strengths = spec.rpartition(":")
    if not sep or not head:
        raise ValueError(f"bad edit {spec!r}: expected SOURCE[:K][@ROWS]:STRENGTHS, e.g. smile.npy:-3..3")
    rows = None
    if "@" in head:
        head, _, rows_text = head.rpartition("@")
        rows = parse_int_list(rows_text)
    component = 0
    source, sep, k = head.rpartition(":")
    if sep and k.isdigit():
        component = int(k)
    else:
        source = head
    return EditSpec(source, component, rows, parse_strengths(strengths, values))


def direction_file(source: str) -> str:
    """A direction file's path as given, or a registry direction (`stylegan models --kind direction`)
    resolved through the hub: cached, or downloaded once."""
    from .. import hub
    if os.path.exists(source) or not hub.is_known(source):
        return source
    entry = hub.lookup(source)
    if entry.kind != "direction":
        raise ValueError(f"{source}: a {entry.kind} model in the registry, not a direction")
    return str(hub.resolve(source))


def resolve_direction(spec: EditSpec, G: torch.nn.Module, cache: dict | None = None, force: bool = False,
                      digest: str | None = None) -> Direction:
    """The direction an edit names: a file (checked against G: its w, and the network it was made
    for, unless `force`; see editing.directions.check_direction), or SeFa / GANSpace of G."""
    cache = {} if cache is None else cache
    # Only SeFa depends on the rows (it factorises their affines); one GANSpace or file serves any rows.
    key = (spec.source, tuple(spec.rows or ())) if spec.source == "sefa" else (spec.source,)
    if key not in cache:
        if spec.source == "sefa":
            cache[key] = sefa(G, spec.rows or "all", num_components=max(16, spec.component + 1))
        elif spec.source == "ganspace":
            cache[key] = ganspace(G, num_samples=20_000, num_components=max(16, spec.component + 1))
        else:
            path = direction_file(spec.source)
            d = load_direction(path, w_dim=G.w_dim)
            try:
                check_direction(d, G, digest, force)
            except ValueError as e:
                raise with_prefix(e, f"{path}: ") from None
            cache[key] = d
    d = cache[key]
    d.component(spec.component)   # range check, one line
    return d


def render_edits(G: torch.nn.Module, ws: torch.Tensor, specs: Sequence[EditSpec], noise_mode: str = "const",
                 cache: dict | None = None) -> list[np.ndarray]:
    """Per edit: images [S, N, H, W, C] uint8 of the N latents ws [N, num_ws, w_dim] at each strength."""
    cache = {} if cache is None else cache
    out = []
    for spec in specs:
        d = resolve_direction(spec, G, cache)
        out.append(edit(G, ws, d, spec.strengths, component=spec.component, layers=spec.rows,
                        noise_mode=noise_mode))
    return out


def moves(G: torch.nn.Module, specs: Sequence[EditSpec], cache: dict | None = None) -> list[Move]:
    """The edits as moves applied together: each spec names exactly one strength."""
    out = []
    for spec in specs:
        if len(spec.strengths) != 1:
            raise ValueError(f"edits applied together take one strength each, {spec.text()} has "
                             f"{len(spec.strengths)}")
        out.append(Move(resolve_direction(spec, G, cache), spec.strengths[0], spec.component, spec.rows))
    return out


def render_together(G: torch.nn.Module, ws: torch.Tensor, specs: Sequence[EditSpec], noise_mode: str = "const",
                    cache: dict | None = None) -> np.ndarray:
    """Images [N, H, W, C] uint8 of the latents ws [N, num_ws, w_dim] with every edit applied at once."""
    return edit_many(G, ws, moves(G, specs, cache), noise_mode)


def strip(images: np.ndarray, strengths: Sequence[float] | None = None) -> np.ndarray:
    """[S, H, W, C] -> [H, S*W, C]: strengths side by side; given the `strengths`, under a caption
    band that names each ([caption_height(W) + H, S*W, C]; `read_strip` takes the frames back)."""
    row = np.concatenate(list(images), axis=1)
    if strengths is None:
        return row
    assert len(strengths) == len(images), (len(strengths), images.shape)
    band = caption_band([strength_text(v) for v in strengths], images.shape[2], images.shape[3])
    return np.concatenate([band, row], axis=0)


def strength_text(value: float) -> str:
    """A strength as its caption says it: '0', '+1.5', '-3', '+0.333'."""
    return "0" if value == 0 else f"{value:+.3g}"


# --- edits as a resumable folder ------------------------------------------------------------------

@dataclass
class EditSummary:
    written: list[Path] = field(default_factory=list)    # strips written now
    skipped: list[Path] = field(default_factory=list)    # strips already whole
    busy: list[Path] = field(default_factory=list)       # strips another live process is making
    grids: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def output_name(name: str, spec: EditSpec) -> str:
    return f"{name}_{spec.label}"


def pending(outdir: str | os.PathLike, names: Sequence[str], specs: Sequence[EditSpec], video: bool = False,
            overwrite: bool = False) -> list[tuple[str, EditSpec]]:
    """The (input, edit) pairs whose files are not all whole in `outdir` (everything with `overwrite`)."""
    outdir = Path(outdir)
    return [(n, s) for s in specs for n in names
            if overwrite or not all(is_complete(outdir / f) for f in _files_of(output_name(n, s), video))]


def _files_of(stem: str, video: bool) -> list[str]:
    return [f"{stem}.png"] + ([f"{stem}.mp4"] if video else [])


def edit_settings(network_digest: str, specs: Sequence[EditSpec], inputs: dict[str, dict], noise_mode: str = "const",
                  extra: dict | None = None) -> dict:
    """What decides the pixels of an edit folder, for its run record: the network, `inputs` (per
    input name what makes its latent: a seed and psi, a latent file's digest, a photo's projection
    settings), each edit by its label (its direction by method or by the digest of its file,
    component, rows, strengths), the noise mode and `extra` (paste-back). `write_edits` lets a
    later run add inputs and edits to a folder, never change one (they name its files)."""
    edits = {}
    for s in specs:
        source = {"method": s.source} if s.source in METHODS else {"direction": _direction_digest(s.source)}
        edits[s.label] = {**source, "component": s.component, "rows": [int(r) for r in s.rows] if s.rows else None,
                          "strengths": [float(v) for v in s.strengths] if len(s.strengths) <= 64 else repr(s.strengths)}
    # "strip" names the strips' layout, so a folder of strips without captions is not resumed as if
    # they had them.
    return {"network": network_digest, "inputs": inputs, "edits": edits, "noise_mode": noise_mode,
            "strip": "captioned", **(extra or {})}


def _direction_digest(source: str) -> str:
    path = direction_file(source)
    return file_digest(path) if os.path.isfile(path) else source


def seed_inputs(G: torch.nn.Module, seeds: Sequence[int], psi: float = 0.7, truncation_cutoff: int | None = None,
                class_idx: int | None = None) -> tuple[torch.Tensor, list[str], dict[str, dict]]:
    """Seeds as edit inputs: ws [N, num_ws, w_dim] (sized against the memory budget first), their
    names (seedNNNN) and what makes each, for the run record."""
    from .generate import map_seeds
    check_held(2 * len(seeds) * G.num_ws * G.w_dim * 4, f"the latents of {len(seeds)} seeds",
               "edit fewer seeds at a time")
    with torch.no_grad():
        ws = map_seeds(G, seeds, psi, truncation_cutoff, class_idx=class_idx)
    names = [f"seed{s:04d}" for s in seeds]
    made = {"psi": float(psi)} if class_idx is None else {"psi": float(psi), "class": int(class_idx)}
    return ws, names, {n: {"seed": int(s), **made} for n, s in zip(names, seeds)}


def latent_inputs(G: torch.nn.Module, paths: Sequence[str | os.PathLike], force: bool = False,
                  digest: str | None = None) -> tuple[torch.Tensor, list[str], dict[str, dict], list[str]]:
    """Latent files as edit inputs: ws [N, num_ws, w_dim], names (the file's, _J for the J-th of
    several latents in one file), what makes each (the file's digest) and warnings. A file that
    does not fit G, or was made for another network (unless `force`), is a ValueError naming it."""
    from ..editing.apply import as_ws
    from ..io.latents import check_compatible, load_latents
    ws_list, names, inputs, warnings = [], [], {}, []
    for p in paths:
        lat = load_latents(p)
        try:
            warnings += [f"{p}: {w}" for w in check_compatible(lat, G, digest, force)]
            w = as_ws(G, lat.ws)
        except ValueError as e:
            raise with_prefix(e, f"{p}: ") from None
        ws_list.append(w)
        stem, made = Path(p).name.split(".")[0], {"latent": file_digest(p)}
        for j in range(len(w)):
            names.append(stem + (f"_{j}" if len(w) > 1 else ""))
            inputs[names[-1]] = {**made, "row": j} if len(w) > 1 else made
    return torch.cat(ws_list), names, inputs, warnings


def check_edit_memory(G: torch.nn.Module, specs: Sequence[EditSpec], num_inputs: int, grid: bool = False) -> int:
    """Size what rendering holds at once, before any of it: one input's images over an edit's
    strengths (and with `grid`, every input's). Returns how many inputs fit in one rendering batch."""
    image = G.img_resolution ** 2 * G.img_channels
    per_input = max(len(s.strengths) for s in specs) * image
    check_held(2 * per_input, f"an edit of {max(len(s.strengths) for s in specs)} strengths",
               "use fewer strengths (fewer values)")
    if grid:
        check_held(2 * num_inputs * per_input, f"a grid of {num_inputs} inputs by "
                   f"{max(len(s.strengths) for s in specs)} strengths", "use fewer inputs or strengths, or no grid")
    from .._memory import memory_budget
    # At most 8 inputs at a time, as image sets batch: synthesis activations grow with the batch too.
    return max(1, min(8, memory_budget() // (4 * per_input)))


def write_edits(G: torch.nn.Module, ws: torch.Tensor, names: Sequence[str], specs: Sequence[EditSpec],
                outdir: str | os.PathLike, *, settings: dict, noise_mode: str = "const", video: bool = False,
                grid: bool = False, overwrite: bool = False, force: bool = False, digest: str | None = None,
                finish: Callable[[np.ndarray, int], np.ndarray] | None = None, cache: dict | None = None,
                provenance: Provenance | None = None, origins: Sequence[Provenance] | None = None,
                progress: ProgressFn | None = None) -> EditSummary:
    """Render and write each input's edits into `outdir` as NAME_EDIT.png: the strengths side by
    side (with `video`, also NAME_EDIT.mp4 sweeping them; with `grid`, grid_EDIT.png: inputs down,
    strengths across).

    `ws` [N, num_ws, w_dim]: names[i] is input i's (see `pending` to skip making inputs whose
    edits are all on disk). `settings` (see `edit_settings`) is the folder's run record: other
    settings raise RunMismatchError unless `overwrite`. `finish(frames [S, H, W, C], i)` may change
    an input's frames before they are written (paste-back). Direction files made for another network
    than `digest` (default G's; a photo's tuned copy of G passes its base network's) are refused
    unless `force`. Each strip (and video) carries origins[i], what made input i (default:
    `provenance`, the run's), with its edit; with `finish` it is a composite (pasted into a photo).
    Grids carry `provenance` with the inputs' names. `progress` gets a Progress('edit') per (input,
    edit) pair done."""
    from torch_utils.misc import network_digest
    start = time.perf_counter()
    check_noise_mode(noise_mode)
    if len(set(names)) != len(names):
        raise ValueError("two inputs have the same name: their edits would overwrite each other")
    labels = [s.label for s in specs]
    same = next((label for label in labels if labels.count(label) > 1), None)
    if same is not None:
        raise ValueError(f"two edits are both named {same} (a direction, component and rows): their files would "
                         "overwrite each other; give one set of strengths per edit")
    outdir = Path(outdir)
    long = next((f for n in names for s in specs for f in _files_of(output_name(n, s), video)
                 if not name_fits(outdir / f)), None)
    if long is not None:
        raise ValueError(f"{outdir / long}: the name is too long for the file system")
    batch = check_edit_memory(G, specs, len(names), grid)
    digest = digest or network_digest(G)
    directions = [resolve_direction(s, G, cache, force, digest) for s in specs]   # every file read first
    provenance = provenance or Provenance()
    origins = list(origins) if origins is not None else [provenance] * len(names)
    if finish is not None:
        origins = [o.with_(kind="composite", operation="paste-back") for o in origins]
    outdir = prepare_outdir(outdir)
    check_run_record(outdir, settings, overwrite, outputs="*.png", grows=GROWS)
    summary = EditSummary()
    todo = pending(outdir, names, specs, video, overwrite)
    done = 0
    for spec, d in zip(specs, directions):
        index = {n: i for i, n in enumerate(names)}
        mine = [index[n] for n, s in todo if s is spec]
        left = set(mine)
        summary.skipped += [outdir / f"{output_name(n, spec)}.png" for i, n in enumerate(names) if i not in left]
        for first in range(0, len(mine), batch):
            with ExitStack() as claims:
                chunk = []
                for i in mine[first:first + batch]:
                    path = outdir / f"{output_name(names[i], spec)}.png"
                    (chunk.append(i) if claims.enter_context(claim(path)) else summary.busy.append(path))
                if chunk:
                    images = edit(G, ws[chunk], d, spec.strengths, component=spec.component, layers=spec.rows,
                                  noise_mode=noise_mode)
                    for k, i in enumerate(chunk):
                        made = origins[i].with_(edits=_edit_fact(spec))
                        summary.written.append(_write_edit(images[:, k], spec.strengths,
                                                           outdir / output_name(names[i], spec), video, finish, i, made))
            done += len(mine[first:first + batch])
            emit(progress, Progress("edit", done, len(todo), item=spec.label, seconds=time.perf_counter() - start))
        if grid:
            made = provenance.with_(edits=_edit_fact(spec), details={"inputs": list(names)})
            summary.grids += _write_grid(outdir, [output_name(n, spec) for n in names], spec.strengths,
                                         f"grid_{spec.label}.png", overwrite, made)
    summary.seconds = time.perf_counter() - start
    return summary


def _edit_fact(spec: EditSpec) -> tuple:
    """An edit as provenance states it: (label, strength) per strength."""
    return tuple((spec.label, float(s)) for s in spec.strengths)


def _write_edit(frames: np.ndarray, strengths: Sequence[float], stem: Path, video: bool, finish, i: int,
                provenance: Provenance) -> Path:
    """One input's strip (and video of the bare frames): both on disk, or neither."""
    from ..io.video import write_video
    from ..io.image_files import save_image
    if finish is not None:
        frames = finish(frames, i)
    with all_or_none() as group:
        if video:
            write_video(iter(frames), group.add(stem.with_name(stem.name + ".mp4")), fps=max(2, len(frames) // 2),
                        provenance=provenance.with_(signer=None))
        save_image(strip(frames, strengths), group.add(stem.with_name(stem.name + ".png")), provenance)
    return stem.with_name(stem.name + ".png")


def _write_grid(outdir: Path, stems: list[str], strengths: Sequence[float], name: str, overwrite: bool,
                provenance: Provenance) -> list[Path]:
    """The strips' frames stacked under one caption band, rebuilt when missing or older than one of
    them (as image_set's grids)."""
    from ..io.image_files import save_image
    files = [outdir / f"{s}.png" for s in stems]
    if not all(is_complete(f) for f in files):
        return []                                   # another process is still making some
    path = outdir / name
    newest = max(f.stat().st_mtime_ns for f in files)
    if is_complete(path) and not overwrite and path.stat().st_mtime_ns >= newest:
        return []
    rows = [read_strip(f, len(strengths)) for f in files]                 # [S, H, W, C] each
    grid = strip(np.concatenate(rows, axis=1), strengths)                 # inputs down, strengths across
    save_image(grid, path, provenance)
    return [path]


def read_strip(path: str | os.PathLike, strengths: int) -> np.ndarray:
    """A strip written by `write_edits` back as its frames [S, H, W, C] (PNG is lossless): the
    caption band is dropped."""
    from PIL import Image
    img = np.asarray(Image.open(path))
    img = img[..., None] if img.ndim == 2 else img
    width, rest = divmod(img.shape[1], strengths)
    top = caption_height(width)
    if rest or img.shape[0] <= top:
        raise ValueError(f"{path}: not a strip of {strengths} strengths")
    return np.stack(np.split(img[top:], strengths, axis=1))