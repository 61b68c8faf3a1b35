"""An uncompressed zip written entry by entry that survives kill -9 and a full disk: a resumed run
continues it, and only a finished zip ever takes the output's name.

`OUT.zip.partial` is the zip being written; `OUT.zip.partial.jsonl` its journal: a first line with
the settings that made it, then one line per finished unit of work (a source file, whatever it
yielded) with the offset, CRC and size of each entry it wrote. A line is appended only after the
entries it names are flushed and fsynced, so every journalled entry is whole on disk; whatever
follows the last one (an entry cut short) is truncated away on resume, and the central directory is
rebuilt from the journal. Entries carry a fixed timestamp, so a resumed zip is byte for byte the zip
an uninterrupted run writes. One process at a time holds the journal's lock."""
from __future__ import annotations

import json
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

from .._errors import ParamError

try:
    import fcntl
except ImportError:   # Windows: no advisory lock; two runs on one output there are the user's to avoid
    fcntl = None

JOURNAL_FORMAT = "stylegan-zip-journal"
JOURNAL_VERSION = 1
# Reproducible archives: every entry says 1980-01-01 00:00, the zip format's first instant.
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)
ENTRY_ATTR = 0o644 << 16
COMMIT_EVERY_S = 2.0


class JournalMismatchError(ParamError):
    """An unfinished zip was begun with other settings; `differences` maps a setting to (then, now)."""

    def __init__(self, partial: Path, differences: dict[str, tuple]):
        self.partial, self.differences = partial, differences
        said = ", ".join(f"{k}={json.dumps(then)}, not {json.dumps(now)}" for k, (then, now) in differences.items())
        super().__init__(f"{partial} is an unfinished run made with {said}: rerun with its settings to finish "
                         f"it, or pass {{overwrite=True}} to start afresh", "overwrite")


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.jsonl")


def _entry_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ENTRY_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = ENTRY_ATTR
    return info


class JournaledZip:
    """Open (or resume) the unfinished zip for `out`. `records` holds what an earlier run finished.

    Use: `add(record, entries)` per unit of work, in order; `finish(last_entries)` closes the zip and
    gives it the output's name. Any failure leaves the partial zip and journal resumable."""

    def __init__(self, out: str | os.PathLike, settings: dict[str, Any], overwrite: bool = False):
        self.out = Path(out)
        self.partial, self.journal = partial_path(self.out), journal_path(self.out)
        self.settings = settings
        self._journal = open(self.journal, "a+b")
        try:
            self._lock()
            self.records = [] if overwrite else self._read_journal()
            if not self.records:
                self._journal.truncate(0)
                self._journal.write(self._line({"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION,
                                                "settings": settings}))
                self._sync(self._journal)
            self._open_zip()
        except BaseException:
            self._journal.close()
            raise
        self._pending: list[bytes] = []
        self._last_commit = time.monotonic()

    # --- resuming ---------------------------------------------------------------------------

    def _lock(self) -> None:
        if fcntl is None:
            return
        try:
            fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(f"{self.out}: another run is writing it right now") from None

    def _read_journal(self) -> list[dict]:
        """The finished records of an earlier run with the same settings ([] for none)."""
        self._journal.seek(0)
        *lines, _cut = self._journal.read().split(b"\n")    # only lines ended by a newline are whole
        try:
            header = json.loads(lines[0])
            assert header["format"] == JOURNAL_FORMAT and header["version"] == JOURNAL_VERSION
        except (IndexError, ValueError, KeyError, TypeError, AssertionError):
            return []       # empty, or cut short before its first line was whole: nothing to resume
        if not self.partial.exists():
            return []
        then = header["settings"]
        differences = {k: (then.get(k), v) for k, v in self.settings.items() if then.get(k) != v}
        if differences:
            raise JournalMismatchError(self.partial, differences)
        try:
            records = [json.loads(line) for line in lines[1:]]
        except ValueError:
            raise ParamError(f"{self.journal}: damaged journal: pass {{overwrite=True}} to start afresh",
                             "overwrite") from None
        self._journal.truncate(sum(len(line) + 1 for line in lines))
        self._verify(records)
        return records

    def _verify(self, records: list[dict]) -> None:
        """Each journalled entry's local header is where the journal says, with its name and CRC; the
        last entry's data matches its CRC (the file under it was not swapped or cut)."""
        entries = [e for r in records for e in r["entries"]]
        with open(self.partial, "rb") as f:
            ok = f.seek(0, 2) >= (records[-1]["end"] if records else 0)
            for k, (name, offset, crc, size) in enumerate(entries if ok else []):
                f.seek(offset)
                head = f.read(30)
                ok = len(head) == 30 and head[:4] == b"PK\x03\x04" and struct.unpack("<I", head[14:18])[0] == crc
                if ok:
                    n, m = struct.unpack("<HH", head[26:30])
                    ok = f.read(n) == name.encode()
                if ok and k == len(entries) - 1:
                    f.seek(m, 1)
                    ok = zlib.crc32(f.read(size)) == crc
                if not ok:
                    break
        if not ok:
            raise ParamError(f"{self.partial} does not hold what its journal says (changed since the run "
                             f"stopped?): pass {{overwrite=True}} to start afresh", "overwrite")

    def _open_zip(self) -> None:
        end = self.records[-1]["end"] if self.records else 0
        self._fp = open(self.partial, "r+b" if self.records else "w+b")
        try:
            self._fp.truncate(end)
            self._fp.seek(end)
            self.zip = zipfile.ZipFile(self._fp, "w", zipfile.ZIP_STORED)
        except BaseException:
            self._fp.close()
            raise
        # The entries already written join the central directory that close() will write.
        for name, offset, crc, size in (e for r in self.records for e in r["entries"]):
            info = _entry_info(name)
            info.header_offset, info.CRC, info.file_size, info.compress_size = offset, crc, size, size
            self.zip.filelist.append(info)
            self.zip.NameToInfo[name] = info

    # --- writing ----------------------------------------------------------------------------

    def add(self, record: dict, entries: list[tuple[str, bytes]]) -> None:
        """Write `entries` (name, bytes) and journal `record` with them (`entries` and `end` are filled in)."""
        written = []
        for name, data in entries:
            info = _entry_info(name)
            self.zip.writestr(info, data)
            written.append([name, info.header_offset, info.CRC, info.file_size])
        record = dict(record, entries=written, end=self._fp.tell())
        self.records.append(record)
        self._pending.append(self._line(record))
        if time.monotonic() - self._last_commit > COMMIT_EVERY_S:
            self.commit()

    def commit(self) -> None:
        """Make everything added so far survive a crash: data first, then the journal lines naming it."""
        if self._pending:
            self._sync(self._fp)
            self._journal.write(b"".join(self._pending))
            self._sync(self._journal)
            self._pending = []
        self._last_commit = time.monotonic()

    def finish(self, last_entries: list[tuple[str, bytes]]) -> None:
        """Write the closing entries and the central directory; the zip then becomes `out`."""
        self.commit()
        for name, data in last_entries:
            self.zip.writestr(_entry_info(name), data)
        self.zip.close()            # writes the central directory; our file object stays open
        self._sync(self._fp)
        self._fp.close()
        os.replace(self.partial, self.out)
        self.journal.unlink(missing_ok=True)
        self._journal.close()

    def close(self) -> None:
        """Stop without finishing: commit what is whole, keep the partial zip for a resume."""
        try:
            if not self._journal.closed and not self._fp.closed:
                self.commit()
        except OSError:
            pass                    # the disk that just failed: the uncommitted entries are redone
        # ZipFile would write a central directory when closed or collected: an unfinished zip gets
        # none, so it lets go of the file first.
        self.zip.fp = None
        for f in (self._fp, self._journal):
            try:
                f.close()
            except OSError:
                pass                # buffered bytes the full disk refuses: past the journal, so unneeded

    @staticmethod
    def _line(obj: dict) -> bytes:
        return (json.dumps(obj, separators=(",", ":")) + "\n").encode()

    @staticmethod
    def _sync(f) -> None:
        f.flush()
        os.fsync(f.fileno())


def discard(out: str | os.PathLike) -> None:
    """Remove an unfinished zip and its journal (overwrite, or a run that finished but died before cleaning up)."""
    out = Path(out)
    partial_path(out).unlink(missing_ok=True)
    journal_path(out).unlink(missing_ok=True)
