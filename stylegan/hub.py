"""Where model files come from: local paths, http(s) URLs and model-zoo names, with a download cache.

A download streams into a temporary file beside its final name and is renamed only once complete
and verified, so the cache never holds a half file under a real name; an interrupted run simply
downloads again. Complete files are reused without touching the network.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional, Union

from . import model_zoo
from ._files import atomic_output, sweep_stale_temps

CHUNK = 1 << 20
DEFAULT_TIMEOUT = 30.0
USER_AGENT = "stylegan-hub/0.1"


class DownloadError(ValueError):
    """A download failed; the message is one line naming the URL and the reason."""


def default_cache_dir() -> Path:
    env = os.environ.get("STYLEGAN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stylegan"


def is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme.lower() in ("http", "https")


def cache_path(url: str, cache_dir: Union[str, os.PathLike, None] = None) -> Path:
    """Where `url` is cached: a hash of the whole URL keeps same-named files from different URLs apart,
    the original file name keeps the folder readable."""
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".") or "download"
    return base / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"


def cached(source: str, cache_dir: Union[str, os.PathLike, None] = None) -> Optional[Path]:
    """The complete cached file for a URL or model name, or None (no network)."""
    entry = model_zoo.get_model(source) if not is_url(source) else None
    path = cache_path(entry.url if entry else source, cache_dir)
    return path if _complete(path, entry.size if entry else None) else None


def resolve(source: Union[str, os.PathLike], cache_dir: Union[str, os.PathLike, None] = None,
            progress: bool = True, *, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Local path, http(s) URL or model-zoo name -> path of a local file.

    A local path comes back as is; a URL or model name is downloaded into the cache once
    (STYLEGAN_CACHE or ~/.cache/stylegan unless `cache_dir` is given) and reused afterwards."""
    text = os.fspath(source)
    if is_url(text):
        return _fetch_cached(text, cache_dir, progress, timeout)
    path = Path(text).expanduser()
    # A folder of the same name (e.g. an output folder called 'ffhq') must not hide a model name.
    if path.is_file() or (path.exists() and not model_zoo.is_model_name(text)):
        return path
    if model_zoo.is_model_name(text):
        entry = model_zoo.get_model(text)
        return _fetch_cached(entry.url, cache_dir, progress, timeout, size=entry.size, sha256=entry.sha256)
    raise FileNotFoundError(_missing_message(text))


def _missing_message(text: str) -> str:
    msg = f"{text}: no such file, and not an http(s) URL or a model name"
    near = model_zoo.close_names(text) if os.sep not in text and "." not in text else []
    return msg + (f"; did you mean: {', '.join(near)}?" if near else " (`stylegan models` lists the names)")


def _complete(path: Path, size: Optional[int]) -> bool:
    return path.is_file() and (size is None or path.stat().st_size == size)


def _fetch_cached(url: str, cache_dir, progress: bool, timeout: float,
                  size: Optional[int] = None, sha256: Optional[str] = None) -> Path:
    dest = cache_path(url, cache_dir)
    if _complete(dest, size):
        return dest
    download(url, dest, size=size, sha256=sha256, progress=progress, timeout=timeout)
    return dest


def download(url: str, dest: Union[str, os.PathLike], *, size: Optional[int] = None,
             sha256: Optional[str] = None, progress: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download `url` to `dest` through a temp file in the same folder; verify, then rename.

    Raises DownloadError on any network, length or checksum failure, and removes the temp file on
    every way out, Ctrl-C included."""
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"{url}: cannot create cache folder {dest.parent}: {e.strerror or e}") from None
    sweep_stale_temps(dest.parent)
    # Atomic: concurrent downloaders (torchrun ranks) each land a complete file.
    with atomic_output(dest) as tmp:
        with open(tmp, "wb") as out:
            got, digest = _stream(url, out, size, progress, timeout)
        _verify(url, got, digest, size, sha256)
    return dest


def _stream(url: str, out, size: Optional[int], progress: bool, timeout: float) -> tuple[int, str]:
    """Copy the body of `url` into `out`; returns (bytes, sha256 hex)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected = _content_length(response)
            if expected is not None and size is not None and expected != size:
                raise DownloadError(f"{url}: server reports {expected} bytes, registry expects {size}")
            bar = _Progress(_short_name(url), expected or size, sys.stderr) if progress else None
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                if bar:
                    bar.update(got)
            if bar:
                bar.close(got)
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
        raise DownloadError(f"{url}: connection failed after {got} bytes: {_reason(e)}") from None
    return got, digest.hexdigest()


def _verify(url: str, got: int, digest: str, size: Optional[int], sha256: Optional[str]) -> None:
    if size is not None and got != size:
        raise DownloadError(f"{url}: size mismatch: got {got} bytes, expected {size}")
    if sha256 is not None and digest != sha256.lower():
        raise DownloadError(f"{url}: sha256 mismatch: got {digest}, expected {sha256.lower()}")


def _content_length(response) -> Optional[int]:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None and int(value) >= 0 else None
    except ValueError:
        return None


def _reason(reason) -> str:
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return _one_line(reason.strerror)
    return _one_line(str(reason)) or type(reason).__name__


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _short_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or url


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class _Progress:
    """One self-rewriting stderr line: bytes done (of total), percent, rate. Redrawn at most 10x/s."""

    def __init__(self, label: str, total: Optional[int], stream):
        self.label, self.total, self.stream = label, total, stream
        self.start = self.last = time.monotonic()
        self.width = 0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.1:
            self.last = now
            self._draw(done, now)

    def close(self, done: int) -> None:
        self._draw(done, time.monotonic())
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, done: int, now: float) -> None:
        rate = done / max(now - self.start, 1e-6)
        amount = _human(done) if not self.total else (
            f"{_human(done)} / {_human(self.total)} ({100 * done / self.total:.0f}%)")
        text = f"downloading {self.label}: {amount} at {_human(rate)}/s"
        # Pad over the previous, possibly longer, line.
        self.stream.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.stream.flush()
