"""Where files come from: local paths, http(s) URLs and registry names, with a download cache.

A download streams into a temporary file beside its final name and is renamed only once complete
and verified, so the cache never holds a half file under a real name; an interrupted run simply
downloads again. Complete files are reused without touching the network. Assets served compressed
(dlib's `.bz2` models) are decompressed while they stream, so the cache holds the usable file.
A copy another install already holds (a pip package that ships the file, torch.hub's checkpoint
folder) is used before anything is downloaded.
"""
from __future__ import annotations

import bz2
import hashlib
import http.client
import importlib.metadata
import importlib.util
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional, Union

from ..io.files import atomic_output, sweep_stale_temps, WRITE_ERRNOS
from ..progress import Progress as Event, ProgressFn, current
from .registry import Entry, NotFoundError, is_known, lookup, suggestion

CHUNK = 1 << 20
DEFAULT_TIMEOUT = 30.0
USER_AGENT = "stylegan-hub/0.1"

# A ProgressFn: called with a Progress('download') per chunk (done and total in bytes, total None while
# the server has not said; item: the file's name). True: the same, to the sink the front end installed
# with stylegan.progress.reporting (downloads start deep inside loaders and face tools, where no progress
# argument reaches), silent when there is none. False/None: silent. Nothing here writes to stderr.
Progress = Union[bool, None, ProgressFn]
PathLike = Union[str, os.PathLike]


class DownloadError(ValueError):
    """A download failed; the message is one line naming the URL once, and the reason."""


def default_cache_dir() -> Path:
    env = os.environ.get("STYLEGAN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stylegan"


def is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme.lower() in ("http", "https")


def cache_path(url: str, cache_dir: Optional[PathLike] = None) -> Path:
    """Where `url` is cached: a hash of the whole URL keeps same-named files from different URLs apart,
    the original file name keeps the folder readable."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "download"
    return base / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"


def entry_path(entry: Entry, cache_dir: Optional[PathLike] = None) -> Path:
    """Where a registry entry's usable file lives in the cache (decompressed, for compressed assets)."""
    path = cache_path(entry.url, cache_dir)
    return path.with_name(path.name[:-4]) if entry.compression == "bz2" else path


def package_file(package: str, relpath: str) -> Optional[Path]:
    """`relpath` inside the installed top-level `package`, or None; the package is never imported
    (face_recognition_models imports pkg_resources, which current setuptools no longer has)."""
    roots: list[str] = []
    try:
        spec = importlib.util.find_spec(package)     # a top-level name: located, not imported
        roots = list(spec.submodule_search_locations or []) if spec else []
    except (ImportError, ValueError):
        pass
    for root in roots:
        path = Path(root, relpath)
        if path.is_file():
            return path
    # Hidden from the import system (a same-named module earlier on sys.path, e.g. in the working folder):
    # the installed distribution's file list still knows where its files are.
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    want = f"{package}/{relpath}"
    for f in files:
        if f.as_posix() == want:
            path = Path(f.locate())
            return path if path.is_file() else None
    return None


def torch_hub_file(name: str) -> Optional[Path]:
    """`name` in torch.hub's checkpoint folder, where torchvision keeps the weights it downloaded."""
    import torch.hub
    path = Path(torch.hub.get_dir(), "checkpoints", name)
    return path if path.is_file() else None


def packaged(entry: Entry) -> Optional[Path]:
    """A copy of the entry's usable file that another install already holds, or None: the one a pip
    package ships (dlib's models in `face-recognition-models`, LPIPS's layers in `lpips`), else the one
    in torch.hub's checkpoint folder (torchvision's weights, hash-checked when torchvision fetched them)."""
    path = package_file(*entry.packaged) if entry.packaged else None
    if path is None and entry.torch_hub:
        path = torch_hub_file(entry.filename)
    return path


def where(entry: Entry, cache_dir: Optional[PathLike] = None) -> Optional[str]:
    """'packaged' or 'cached' when the entry is on this machine, None when it would be downloaded."""
    if packaged(entry) is not None:
        return "packaged"
    return "cached" if _complete(entry_path(entry, cache_dir), entry) else None


def cached(source: str, cache_dir: Optional[PathLike] = None) -> Optional[Path]:
    """The complete local file for a URL or registry name, packaged or in the cache, or None (no network)."""
    if is_url(source):
        path = cache_path(source, cache_dir)
        return path if path.is_file() else None
    entry = lookup(source)
    path = packaged(entry)
    if path is not None:
        return path
    path = entry_path(entry, cache_dir)
    return path if _complete(path, entry) else None


def resolve(source: PathLike, cache_dir: Optional[PathLike] = None, progress: Progress = True, *,
            timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Local path, http(s) URL or registry name -> path of a local file.

    A local path comes back as is; a URL or registry name is downloaded into the cache once
    (STYLEGAN_CACHE or ~/.cache/stylegan unless `cache_dir` is given) and reused afterwards; dlib's
    models come from the `face-recognition-models` package when it is installed. Raises a one-line
    ValueError: NotFoundError (no such file or name), DownloadError (network, size, checksum)."""
    text = os.fspath(source)
    if not text.strip():
        raise ValueError("no model given (an empty path or name)")
    if is_url(text):
        dest = cache_path(text, cache_dir)
        return dest if dest.is_file() else download(text, dest, progress=progress, timeout=timeout)
    path = Path(text).expanduser()
    known = is_known(text)
    # A folder of the same name (e.g. an output folder called 'ffhq') must not hide a registry name.
    if path.is_file() or (path.exists() and not known):
        return path
    if known:
        return fetch(lookup(text), cache_dir, progress, timeout=timeout)
    if "/" in text or os.sep in text:
        raise NotFoundError(f"{text}: no such file")
    raise NotFoundError(f"{text}: neither a file nor a known model{suggestion(text)} (`stylegan models` lists them)")


def fetch(entry: Entry, cache_dir: Optional[PathLike] = None, progress: Progress = True, *,
          timeout: float = DEFAULT_TIMEOUT) -> Path:
    """A registry entry -> its usable local file: packaged, cached, or downloaded now."""
    path = packaged(entry)
    if path is not None:
        return path
    dest = entry_path(entry, cache_dir)
    if _complete(dest, entry):
        return dest
    return download(entry.url, dest, size=entry.size, sha256=entry.sha256, progress=progress, timeout=timeout,
                    decompress=entry.compression)


def _complete(path: Path, entry: Entry) -> bool:
    """Whether the cache file of `entry` is whole. Sizes describe what the URL serves: they say nothing
    about a decompressed file."""
    if not path.is_file():
        return False
    return entry.size is None or entry.compression is not None or path.stat().st_size == entry.size


def download(url: str, dest: PathLike, *, size: Optional[int] = None, sha256: Optional[str] = None,
             progress: Progress = True, timeout: float = DEFAULT_TIMEOUT, decompress: Optional[str] = None) -> Path:
    """Download `url` to `dest` through a temp file in the same folder; verify, then rename.

    `size` and `sha256` (the whole hex digest, or a prefix of it) check the bytes served;
    `decompress='bz2'` writes them decompressed.
    Raises DownloadError on any network, length, checksum or decompression failure, and removes the
    temp file on every way out, Ctrl-C included."""
    assert decompress in (None, "bz2"), decompress
    assert sha256 is None or re.fullmatch(r"[0-9a-fA-F]{8,64}", sha256), f"not a sha256 (prefix): {sha256!r}"
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"{url}: cannot create cache folder {dest.parent}: {_lower_first(e.strerror or str(e))}") \
            from None
    sweep_stale_temps(dest.parent)
    # Atomic: concurrent downloaders (torchrun ranks) each land a complete file. The bytes are
    # checked against the size and digest the registry has, not by their format.
    with atomic_output(dest, check=False) as tmp:
        with open(tmp, "wb") as out:
            sink = _Bunzip(url, out) if decompress == "bz2" else out
            got, digest = _stream(url, sink, size, progress, timeout)
            _verify(url, got, digest, size, sha256)
            if decompress == "bz2":
                sink.finish()
    return dest


class _Bunzip:
    """A write-only file that decompresses bz2 (multi-stream too) into `out`, in bounded pieces."""

    def __init__(self, url: str, out):
        self.url, self.out = url, out
        self.d = bz2.BZ2Decompressor()

    def write(self, data: bytes) -> None:
        while True:
            self.out.write(self._decompress(data))
            data = b""
            while not self.d.eof and not self.d.needs_input:
                self.out.write(self._decompress(b""))
            if not (self.d.eof and self.d.unused_data):
                return
            data, self.d = self.d.unused_data, bz2.BZ2Decompressor()

    def _decompress(self, data: bytes) -> bytes:
        # Only the decompressor's errors are the data's fault; a failing write is the disk's.
        try:
            return self.d.decompress(data, CHUNK)
        except (OSError, EOFError) as e:
            raise DownloadError(f"{self.url}: not valid bz2 data ({_lower_first(str(e))})") from None

    def finish(self) -> None:
        if not self.d.eof:
            raise DownloadError(f"{self.url}: bz2 data ends early")


def _stream(url: str, out, size: Optional[int], progress: Progress, timeout: float) -> tuple[int, str]:
    """Copy the body of `url` into `out`; returns (bytes, sha256 hex)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected = _content_length(response)
            if expected is not None and size is not None and expected != size:
                raise DownloadError(f"{url}: server reports {expected} bytes, registry expects {size}")
            report = _reporter(progress, _short_name(url), expected or size)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                report.update(got)
            report.close(got)
            # urllib returns an empty read, not an error, when the peer closes early.
            if expected is not None and got != expected:
                raise DownloadError(f"{url}: truncated download: got {got} of {expected} bytes")
    except DownloadError:
        raise
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: HTTP {e.code} {_one_line(e.reason)}") from None
    except urllib.error.URLError as e:
        raise DownloadError(f"{url}: {_reason(e.reason)}") from None
    except http.client.IncompleteRead as e:
        raise DownloadError(f"{url}: truncated download: got {got + len(e.partial)} bytes, "
                            f"{e.expected} more expected") from None
    except (socket.timeout, TimeoutError):
        raise DownloadError(f"{url}: timed out after {timeout:g} s (got {got} bytes)") from None
    except (http.client.HTTPException, OSError) as e:
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            raise               # the cache's disk, not the connection: atomic_output says so
        raise DownloadError(f"{url}: connection failed after {got} bytes: {_reason(e)}") from None
    return got, digest.hexdigest()


def _verify(url: str, got: int, digest: str, size: Optional[int], sha256: Optional[str]) -> None:
    if size is not None and got != size:
        raise DownloadError(f"{url}: size mismatch: got {got} bytes, expected {size}")
    if sha256 is not None and not digest.startswith(sha256.lower()):
        raise DownloadError(f"{url}: sha256 mismatch: got {digest}, expected {sha256.lower()}")


def _content_length(response) -> Optional[int]:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None and int(value) >= 0 else None
    except ValueError:
        return None


def _reason(reason) -> str:
    """An exception or text -> a lower-case one-line clause: 'connection refused', 'timed out'."""
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return _lower_first(_one_line(reason.strerror))
    return _lower_first(_one_line(str(reason))) or type(reason).__name__


def _lower_first(text: str) -> str:
    # Acronyms ('HTTP', 'SSL') keep their capitals; sentence case ('Connection refused') does not.
    return text[:1].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _short_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or url


def _reporter(progress: Progress, label: str, total: Optional[int]):
    fn = current() if progress is True else progress
    return _Callback(fn, label, total) if callable(fn) else _Silent()


class _Silent:
    def update(self, done: int) -> None:
        pass

    def close(self, done: int) -> None:
        pass


class _Callback:
    """Calls fn(Progress) after every chunk, and once more at the end when nothing came (an empty body)
    or the server never said the size: the last event then carries the total, so it says 'finished'."""

    def __init__(self, fn: ProgressFn, label: str, total: Optional[int]):
        self.fn, self.label, self.total, self.calls = fn, label, total, 0
        self.start = time.monotonic()

    def update(self, done: int) -> None:
        self.calls += 1
        self.fn(Event("download", done, self.total, item=self.label, seconds=time.monotonic() - self.start))

    def close(self, done: int) -> None:
        if not self.calls or self.total is None:
            self.total = done if self.total is None else self.total
            self.update(done)
