"""Files in and out, shared by every reader and writer in the toolkit.

Out: a file is written under a hidden temporary name beside its target, checked whole, and renamed
over it only then, so a reader never sees half a file and a resumed run never mistakes a truncated
file for a finished one. Writers do not always say when the disk fills (Pillow's JPEG encoder and
ffmpeg leave a short file and return success), so a finished temporary is checked by its format's
own end marker before it is published. A failure to write (disk full, file too large, a name the
file system cannot hold) is one WriteError naming the file. Files that belong together (an image
and its latent, a crop and its record) are written `all_or_none`. Every output gets one mode, the
umask's.

The temporary name records its owner (host and PID): a process killed outright (SIGKILL, OOM, a
lost node) cannot clean up after itself, so the next writer in that folder removes the temporaries,
and the claims, whose owner is gone. Temporary and claim names are shortened to fit wherever the
final name fits.

In: `check_regular_file` refuses FIFOs, devices and sockets before anything opens them (a read
would block forever), and `is_complete` tells a whole output from one cut short by a crash outside
the toolkit."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import stat
import struct
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Union

from torch_utils.processes import pid_alive

# Owners on other hosts (a shared file system under multi-node torchrun) cannot be asked whether
# they are alive; their temporaries count as abandoned only once this old.
FOREIGN_STALE_S = 24 * 3600.0

_HOST = (re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname().split(".")[0]) or "host")[:32]
_TEMP = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.tmp(\.[^.]*)?$")
_CLAIM = re.compile(r"^\..+\.claim$")
_OWNER = re.compile(r"^[A-Za-z0-9_]+-\d+$")

# Errors that say "this output cannot be written here", whatever the writer.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.ENAMETOOLONG, errno.EROFS})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once: os.umask can only be read by setting it, which is not safe once threads run.
OUTPUT_MODE = 0o666 & ~_umask()


class WriteError(ValueError, OSError):
    """An output could not be written: one line naming the file and the reason. A ValueError, so
    commands report it like any bad input; an OSError, so `except OSError` sees it too."""

    def __init__(self, path: Union[str, os.PathLike], reason: str, code: int | None = None):
        super().__init__(f"{path}: cannot write: {reason}")
        self.path, self.reason, self.code = Path(path), reason, code


def _reason(code: int) -> str:
    return os.strerror(code)[:1].lower() + os.strerror(code)[1:]


def as_write_error(path: Union[str, os.PathLike], e: BaseException, tmp: Path | None = None) -> WriteError | None:
    """The WriteError that `e`, raised while writing `path`, stands for; None when it is no write failure.

    Writers report a full disk in their own words (safetensors' SafetensorError, ffmpeg's text) or not
    at all, so the file system is asked too: no space left there, or a temporary stopped at the
    process's file size limit, is the reason whatever the exception says."""
    if isinstance(e, WriteError):
        return e
    for err in (e, e.__cause__, e.__context__):
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            return WriteError(path, _reason(err.errno), err.errno)
    # Rust's and C's wrappers keep the errno in their text: "(os error 28)", "[Errno 28]".
    m = re.search(r"\(os error (\d+)\)|\[Errno (\d+)\]", str(e))
    if m and int(m.group(1) or m.group(2)) in WRITE_ERRNOS:
        code = int(m.group(1) or m.group(2))
        return WriteError(path, _reason(code), code)
    code = _filesystem_refusal(Path(path).parent, tmp)
    return WriteError(path, _reason(code), code) if code is not None else None


def _filesystem_refusal(folder: Path, tmp: Path | None) -> int | None:
    try:
        st = os.statvfs(folder)
        if st.f_bavail * st.f_frsize < 64 * 1024:
            return errno.ENOSPC
    except OSError:
        pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if tmp is not None and soft != resource.RLIM_INFINITY and tmp.stat().st_size >= soft:
            return errno.EFBIG
    except (ImportError, OSError, ValueError):
        pass
    return None


# --- names ---------------------------------------------------------------------------------------

def name_max(folder: Union[str, os.PathLike]) -> int:
    """The longest file name (in bytes) the file system of `folder` takes (255 where it cannot say)."""
    for f in (Path(folder), *Path(folder).parents):
        try:
            return int(os.pathconf(f, "PC_NAME_MAX"))
        except (OSError, ValueError):
            continue
    return 255


def name_fits(path: Union[str, os.PathLike]) -> bool:
    """Whether the file system can hold `path`'s name (checked before a long piece of work makes it)."""
    path = Path(path)
    return len(os.fsencode(path.name)) <= name_max(path.parent)


def _hidden_name(path: Path, tag: str, suffix: str) -> Path:
    """`dir/.STEM<tag><suffix>`, the stem shortened (and told apart by a hash of the whole name)
    until it fits the folder's file system."""
    limit = name_max(path.parent)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    name = f".{stem}{tag}{suffix}"
    if len(os.fsencode(name)) <= limit:
        return path.with_name(name)
    mark = "~" + hashlib.sha256(os.fsencode(path.name)).hexdigest()[:10]
    room = limit - len(os.fsencode(f".{mark}{tag}{suffix}"))
    while stem and len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return path.with_name(f".{stem}{mark}{tag}{suffix}")


def temp_path(path: Union[str, os.PathLike]) -> Path:
    """`dir/name.ext` -> `dir/.name.<host>-<pid>.tmp.ext` (the extension kept last for encoders that
    read it), shortened to fit where `name.ext` fits."""
    path = Path(path)
    suffix = path.suffix if len(path.suffix) <= 16 else ""
    return _hidden_name(path, f".{_HOST}-{os.getpid()}.tmp", suffix)


def claim_path(path: Union[str, os.PathLike]) -> Path:
    """The claim file of an output (the same for every process)."""
    return _hidden_name(Path(path), ".claim", "")


# --- writing -------------------------------------------------------------------------------------

@contextmanager
def atomic_output(path: Union[str, os.PathLike], check: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on any error (Ctrl-C included)
    it is removed. A file the writer left short (see the module doc) or an error that means "cannot
    write here" raises WriteError. `check=False` skips the format check (for files that are
    checked otherwise, e.g. a download against its digest)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        try:
            yield tmp
            if check and not is_complete(tmp):
                raise _short_file(path, tmp)
            os.chmod(tmp, OUTPUT_MODE)
            os.replace(tmp, path)
        except Exception as e:
            failure = as_write_error(path, e, tmp)
            if failure is None:
                raise
            raise failure from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _short_file(path: Path, tmp: Path) -> WriteError:
    code = _filesystem_refusal(path.parent, tmp)
    return WriteError(path, _reason(code) if code is not None else "the writer left it incomplete", code)


class Group:
    """The files of one `all_or_none` block: each written file is `add`ed as it lands."""

    def __init__(self):
        self.paths: list[Path] = []
        self.undos: list[Callable[[], None]] = []

    def add(self, path: Union[str, os.PathLike]) -> Path:
        self.paths.append(Path(path))
        return Path(path)

    def on_failure(self, undo: Callable[[], None]) -> None:
        """Something to take back (a table row) if the group fails."""
        self.undos.append(undo)


@contextmanager
def all_or_none() -> Iterator[Group]:
    """Outputs that belong together: when anything in the block fails (a full disk, Ctrl-C), the
    files already added are removed again, so each set is complete or absent."""
    group = Group()
    try:
        yield group
    except BaseException:
        for p in reversed(group.paths):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass
        for undo in reversed(group.undos):
            try:
                undo()
            except Exception:   # the original failure is what the user must see
                pass
        raise


# --- what a resume may skip ----------------------------------------------------------------------

_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def is_complete(path: Union[str, os.PathLike]) -> bool:
    """Whether `path` is a whole file, judged by its format's structure: a PNG ends with its IEND
    chunk, a JPEG with its end-of-image marker, a GIF with its trailer; a safetensors file is as long
    as its header says; a zip (.npz) has its central directory; an MP4 has its index (moov) and
    boxes that add up to its size. Other files count when not empty. False for anything missing,
    unreadable or not a regular file."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return False
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(max(st.st_size - 12, 0))
            tail = f.read()
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                return tail == _PNG_END
            if head.startswith(b"\xff\xd8\xff"):
                return tail.endswith(b"\xff\xd9")
            if head.startswith(b"GIF8"):
                return tail.endswith(b";")
            if head.startswith(b"PK\x03\x04"):
                f.seek(0)
                with zipfile.ZipFile(f):
                    return True
            if head[4:8] == b"ftyp":
                return _mp4_complete(f, st.st_size)
            if head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < 1 << 40:   # not text that starts with '{'
                return _safetensors_complete(f, st.st_size)
        return True
    except (OSError, ValueError, zipfile.BadZipFile, struct.error):
        return False


def _mp4_complete(f, size: int) -> bool:
    at, boxes = 0, set()
    while at < size:
        f.seek(at)
        header = f.read(16)
        if len(header) < 8:
            return False
        n, kind = struct.unpack(">I4s", header[:8])
        if n == 1:
            n = struct.unpack(">Q", header[8:16])[0]
        elif n == 0:
            n = size - at
        if n < 8:
            return False
        boxes.add(kind)
        at += n
    return at == size and b"moov" in boxes


def _safetensors_complete(f, size: int) -> bool:
    f.seek(0)
    (n,) = struct.unpack("<Q", f.read(8))
    if 8 + n > size:
        return False
    header = json.loads(f.read(n))
    ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    return 8 + n + max(ends, default=0) == size


# --- reading -------------------------------------------------------------------------------------

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def check_regular_file(path: Union[str, os.PathLike], what: str = "a file") -> Path:
    """`path` if it is a regular file; else a one-line ValueError. A FIFO, device or socket is refused
    before anything opens it: reading one blocks forever or never ends."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({_reason(e.errno) if e.errno else e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path}: is a folder, not {what}")
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
        raise ValueError(f"{path}: is {kind}, not {what}")
    return Path(path)


def is_regular_file(path: Union[str, os.PathLike]) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


# --- folders, claims and what killed processes left ------------------------------------------------

def _owner_gone(owner: str, mtime: float, now: float) -> bool:
    host, _, pid = owner.rpartition("-")
    if host == _HOST and pid.isdigit():
        return not pid_alive(int(pid))
    return now - mtime > FOREIGN_STALE_S


def sweep_stale_temps(folder: Union[str, os.PathLike]) -> int:
    """Remove temporaries and claims in `folder` left by writers that died; returns how many."""
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    now = time.time()
    for p in entries:
        try:
            m = _TEMP.match(p.name)
            if m is not None:
                stale = _owner_gone(f"{m['host']}-{m['pid']}", p.stat().st_mtime, now)
            elif _CLAIM.match(p.name) and p.stat().st_size < 128:
                owner = p.read_text(errors="replace").strip()
                stale = _OWNER.match(owner) is not None and _owner_gone(owner, p.stat().st_mtime, now)
            else:
                continue
            if stale:
                p.unlink()
                removed += 1
        except OSError:
            pass  # gone already, or not ours to remove
    return removed


@contextmanager
def claim(path: Union[str, os.PathLike]) -> Iterator[bool]:
    """Take `path` for this process while it is being made: yields True when taken, False when a
    live process holds it (two runs on one folder then share the work instead of both doing all of
    it). The claim of a dead process is taken over; the claim is released when the block ends."""
    lock = claim_path(path)
    me = f"{_HOST}-{os.getpid()}"
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner, mtime = lock.read_text(errors="replace").strip(), lock.stat().st_mtime
            except OSError:
                continue                    # released meanwhile: try again
            if owner == me or not _owner_gone(owner, mtime, time.time()):
                yield False
                return
            # Renaming is atomic: of several processes taking over a dead claim, one wins.
            try:
                os.rename(lock, temp_path(lock))
                temp_path(lock).unlink()
            except OSError:
                pass
            continue
        except OSError as e:
            failure = as_write_error(lock, e)
            if failure is None:
                raise
            raise failure from None
        try:
            os.write(fd, me.encode())
        finally:
            os.close(fd)
        try:
            yield True
        finally:
            try:
                lock.unlink(missing_ok=True)
            except OSError:
                pass
        return
    yield False


def ensure_writable_dir(folder: Union[str, os.PathLike]) -> Path:
    """Create `folder` (and parents) and check that files can be written in it, before any work.

    Raises ValueError with one line: a path under a file, a name too long, a read-only or virtual
    file system (/proc), a permission problem."""
    folder = Path(folder)
    try:
        for parent in [folder, *folder.parents]:
            if parent.exists() and not parent.is_dir():
                raise ValueError(f"{folder}: {parent} is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{folder}: cannot create the folder ({e.strerror or e})") from None
    probe = temp_path(folder / "write-probe")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"{folder}: cannot write files there ({e.strerror or e})") from None
    return folder
