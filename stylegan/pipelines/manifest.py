"""The run record of an output folder: what made its files, so a rerun never mixes two sets.

An image set is resumable (files already present are skipped), which is only safe when the rerun
would have made the same files. The folder keeps `.stylegan-run.json` with every setting that
decides the pixels (network digest, psi, cutoff, noise mode, class, format) and the toolkit
version; a rerun compares its settings with it and stops on any difference, naming them."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .._errors import ParamError
from .._files import atomic_output
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


def run_settings(G, psi: float, truncation_cutoff: int | None, noise_mode: str, class_idx: int | None,
                 fmt: str) -> dict:
    """What decides the pixels of a folder's images."""
    from torch_utils.misc import network_digest
    return {"network": network_digest(G), "psi": float(psi), "truncation_cutoff": truncation_cutoff,
            "noise_mode": noise_mode, "class_idx": class_idx, "format": fmt}


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


def differences(record: dict, settings: dict) -> dict[str, tuple]:
    return {k: (record.get(k), v) for k, v in settings.items() if record.get(k) != v}


def check_run_record(outdir: str | os.PathLike, settings: dict, overwrite: bool = False,
                     outputs: str | None = None) -> None:
    """Raise RunMismatchError when `outdir` was made with other settings (unless `overwrite`);
    record `settings` in a new or overwritten folder. A folder without a record that already holds
    files matching the glob `outputs` is refused too: nothing says what made them.

    Under torchrun every rank checks and writes the (identical) record before its first file, so
    whichever rank starts first, no rank ever sees files without a record."""
    record = None if overwrite else read_run_record(outdir)
    if record is None and not overwrite and outputs and next(Path(outdir).glob(outputs), None) is not None:
        record = read_run_record(outdir)   # another rank may have recorded its run meanwhile
        if record is None:
            raise ParamError(f"{outdir} already holds {outputs} files but no run record, so their settings "
                             f"are unknown: use another {{outdir}} or pass {{overwrite=True}}", "outdir", "overwrite")
    if record is not None:
        diff = differences(record, settings)
        if diff:
            raise RunMismatchError(outdir, diff)
        return
    # The version is recorded for people, not compared: a release that makes the same pixels may
    # resume an old folder.
    with atomic_output(Path(outdir) / RUN_RECORD) as tmp:
        tmp.write_text(json.dumps({**settings, "stylegan_version": __version__}, indent=1) + "\n")
