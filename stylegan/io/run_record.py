"""The run record of an output folder: what made its files, so a rerun never mixes two sets.

An image set is resumable (files already present are skipped), which is only safe when the rerun
would have made the same files. The folder keeps `.stylegan-run.json` with every setting that
decides the pixels (network digest, psi, cutoff, noise mode, class, format) and the toolkit
version; a rerun compares its settings with it and stops on any difference, naming them."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from .._errors import ParamError
from .files import atomic_output, ensure_writable_dir, sweep_stale_temps
from .._version import __version__

RUN_RECORD = ".stylegan-run.json"


class RunMismatchError(ParamError):
    """The output folder was made with other settings; `differences` maps a setting to (then, now)."""

    def __init__(self, outdir: str | os.PathLike, differences: dict[str, tuple]):
        self.outdir, self.differences = Path(outdir), dict(differences)
        said = ", ".join(f"{k}={_show(then)}, not {_show(now)}" for k, (then, now) in self.differences.items())
        super().__init__(f"{outdir} was made with {said}: use another {{outdir}} or {{overwrite=True}}",
                         "outdir", "overwrite")


def _show(v) -> str:
    if isinstance(v, str) and len(v) > 16:
        return v[:12] + "..."   # a digest: its head tells two networks apart
    return repr(v)


def prepare_outdir(outdir: str | os.PathLike) -> Path:
    """Create the folder (or say in one line why it cannot be written) and remove the temporaries
    and claims of runs that were killed outright."""
    outdir = ensure_writable_dir(outdir)
    sweep_stale_temps(outdir)
    return outdir


def run_settings(G, psi: float, truncation_cutoff: int | None, noise_mode: str, class_idx: int | None,
                 fmt: str, transform=None) -> dict:
    """What decides the pixels of a folder's images. `transform` (StyleGAN3's input transform) is
    recorded as 'pose' only when given, so folders made without one still match."""
    from torch_utils.misc import network_digest
    settings = {"network": network_digest(G), "psi": float(psi), "truncation_cutoff": truncation_cutoff,
                "noise_mode": noise_mode, "class_idx": class_idx, "format": fmt}
    if transform is not None:
        settings["pose"] = [[round(float(v), 9) for v in row] for row in transform]
    return settings


def read_run_record(outdir: str | os.PathLike) -> dict | None:
    """The record of `outdir`, None for a folder without one."""
    path = Path(outdir) / RUN_RECORD
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        assert isinstance(record, dict)
        return record
    except (OSError, ValueError, AssertionError):
        raise ParamError(f"{path}: unreadable run record: pass {{overwrite=True}} to start the folder afresh",
                         "overwrite") from None


def differences(record: dict, settings: dict, grows: Sequence[str] = ()) -> dict[str, tuple]:
    """Settings that differ from the record's, as {key: (then, now)}. A key in `grows` holds a dict
    (one entry per output name, say) that may gain entries: only entries in both are compared."""
    out = {}
    for k, now in settings.items():
        then = record.get(k)
        if k in grows and isinstance(then, dict) and isinstance(now, dict):
            changed = [i for i in now if i in then and then[i] != now[i]]
            if changed:
                out[k] = ({i: then[i] for i in changed}, {i: now[i] for i in changed})
        elif then != now:
            out[k] = (then, now)
    return out


def check_run_record(outdir: str | os.PathLike, settings: dict, overwrite: bool = False,
                     outputs: str | None = None, write: bool = True, grows: Sequence[str] = ()) -> None:
    """Raise RunMismatchError when `outdir` was made with other settings (unless `overwrite`);
    record `settings` in a new or overwritten folder (unless not `write`: a check before long work
    that comes before the first file). A folder without a record that already holds files matching
    the glob `outputs` is refused too: nothing says what made them. Keys in `grows` are dicts that
    a later run may add entries to (an edit folder's edits and inputs): the record keeps the union.

    Under torchrun every rank checks and writes the (identical) record before its first file, so
    whichever rank starts first, no rank ever sees files without a record."""
    record = None if overwrite else read_run_record(outdir)
    if record is None and not overwrite and outputs and next(Path(outdir).glob(outputs), None) is not None:
        record = read_run_record(outdir)   # another rank may have recorded its run meanwhile
        if record is None:
            raise ParamError(f"{outdir} already holds {outputs} files but no run record, so their settings "
                             f"are unknown: use another {{outdir}} or pass {{overwrite=True}}", "outdir", "overwrite")
    if record is not None:
        diff = differences(record, settings, grows)
        if diff:
            raise RunMismatchError(outdir, diff)
        if write and any(set(settings[k]) - set(record.get(k) or {}) for k in grows if isinstance(settings.get(k), dict)):
            _grow_record(outdir, settings, grows)
        return
    if not write:
        return
    _write_record(outdir, settings)


def _write_record(outdir: str | os.PathLike, settings: dict) -> None:
    # The version is recorded for people, not compared: a release that makes the same pixels may
    # resume an old folder.
    with atomic_output(Path(outdir) / RUN_RECORD) as tmp:
        tmp.write_text(json.dumps({**settings, "stylegan_version": __version__}, indent=1) + "\n")


def _grow_record(outdir: str | os.PathLike, settings: dict, grows: Sequence[str]) -> None:
    """Add `settings`' new entries of the `grows` keys to the record; read, checked and rewritten
    under a lock, so two runs adding entries at once both keep theirs."""
    from torch_utils.file_lock import exclusive
    with exclusive(str(Path(outdir) / f"{RUN_RECORD}.lock"), timeout=60):
        record = read_run_record(outdir) or {}
        diff = differences(record, settings, grows)
        if diff:
            raise RunMismatchError(outdir, diff)
        merged = {**record, **{k: {**(record.get(k) or {}), **settings[k]} for k in grows if k in settings}}
        merged.pop("stylegan_version", None)
        _write_record(outdir, merged)
