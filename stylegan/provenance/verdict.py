"""Read an image's provenance back: metadata, C2PA manifest, watermark; one verdict per image.

A verdict never says an image is real: a photo carries none of the marks, but neither does a
synthetic image whose metadata was stripped, whose manifest was never made and whose watermark was
cut away. So "nothing found" is said as exactly that."""
from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import numpy as np

from . import watermark as wm
from .record import read_facts, summary
from .signing import ManifestCheck, check

MAX_FILE_BYTES = 1 << 30       # a larger file is refused before it is read
NOTHING_FOUND = "no provenance found (absence of a mark does not show that an image is real)"
ImageInput = Union[str, os.PathLike, bytes, np.ndarray]


@dataclass
class Verification:
    """What one image carries. `watermark`: 'found', 'not found', 'too small' (under
    watermark.MIN_READ_SIDE pixels), 'not checked' (too large, or grey) or 'unreadable' (the pixels
    do not decode). `error`: why the file could not be read at all (not an image, a folder...)."""
    path: Optional[str] = None
    metadata: Optional[dict] = None
    c2pa: ManifestCheck = field(default_factory=lambda: ManifestCheck("none"))
    watermark: str = "not checked"
    mark: Optional[wm.Mark] = None
    error: Optional[str] = None

    @property
    def found(self) -> bool:
        """Whether any mark of provenance is there (a damaged manifest counts: someone signed it)."""
        return self.metadata is not None or self.c2pa.state != "none" or self.mark is not None

    def line(self) -> str:
        head = f"{self.path}: " if self.path else ""
        if self.error:
            return f"{head}{self.error}"
        parts = [f"metadata: {self._metadata_text()}", f"C2PA: {self._c2pa_text()}",
                 f"watermark: {self._watermark_text()}"]
        tail = "" if self.found else f" => {NOTHING_FOUND}"
        return head + "; ".join(parts) + tail

    def _metadata_text(self) -> str:
        if self.metadata is None:
            return "none"
        if self.metadata.get("foreign"):
            kind = self.metadata["digital_source_type"].rsplit("/", 1)[-1]
            return f"IPTC digital source type {kind} (written by another tool)"
        return summary(self.metadata)

    def _c2pa_text(self) -> str:
        c = self.c2pa
        text = c.state + (f", signed by {c.signer}" if c.signer else "")
        return text + (f" ({c.detail})" if c.detail else "")

    def _watermark_text(self) -> str:
        if self.mark is None:
            return self.watermark + (f" (under {wm.MIN_READ_SIDE} px)" if self.watermark == "too small" else "")
        m = self.mark
        how = ", after undoing a crop or resize" if m.shifted else ""
        return f"found (stylegan, {m.kind}, network {m.network_prefix}..., confidence {m.confidence:.2f}{how})"

    def as_dict(self) -> dict:
        return {"path": self.path, "found": self.found, "error": self.error, "metadata": self.metadata,
                "c2pa": {"state": self.c2pa.state, "signer": self.c2pa.signer, "detail": self.c2pa.detail},
                "watermark": {"state": self.watermark, "kind": self.mark.kind if self.mark else None,
                              "network_prefix": self.mark.network_prefix if self.mark else None,
                              "confidence": round(self.mark.confidence, 4) if self.mark else None,
                              "shifted": self.mark.shifted if self.mark else None}}


def verify(image: ImageInput, trust: Optional[bytes] = None, search: bool = True) -> Verification:
    """Everything `image` (a path, the bytes of a file, or [H, W, C] uint8 pixels) carries. `trust`:
    PEM trust anchors for C2PA signers (else STYLEGAN_TRUST_ANCHORS names a file of them); `search`:
    also look for a watermark that a crop or resize moved (slower on images without one).
    Never raises for a bad file: `Verification.error` says what is wrong with it."""
    if isinstance(image, np.ndarray):
        result = Verification()
        _check_pixels(result, image, search)
        return result
    path = None if isinstance(image, (bytes, bytearray)) else str(image)
    result = Verification(path)
    try:
        data = bytes(image) if path is None else _read(Path(image))
    except ValueError as e:
        result.error = str(e)
        return result
    if trust is None and os.environ.get("STYLEGAN_TRUST_ANCHORS"):
        try:
            trust = Path(os.environ["STYLEGAN_TRUST_ANCHORS"]).read_bytes()
        except OSError as e:
            result.error = f"cannot read STYLEGAN_TRUST_ANCHORS ({e.strerror or e})"
            return result
    from PIL import Image, UnidentifiedImageError
    with warnings.catch_warnings():
        # Between Pillow's warning and its error (89 to 179 megapixels) an image is decoded; past the
        # error (a decompression bomb, or a photo too large to check here) it is not.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            result.c2pa = check(data, _format_of(data), trust)
            result.watermark = "not checked: too large to decode"
            return result
        except (UnidentifiedImageError, OSError, ValueError):
            result.error = "not an image (or a format Pillow cannot read)"
            return result
        fmt = (im.format or "").lower()
        result.c2pa = check(data, "jpg" if fmt == "jpeg" else fmt, trust)
        result.metadata = _facts(im)
        try:
            im.load()
            result.metadata = result.metadata or _facts(im)   # chunks after the pixels are read by now
            pixels = np.asarray(im.convert("RGB") if im.mode != "L" else im)
        except (OSError, ValueError, SyntaxError) as e:
            result.watermark = f"unreadable: truncated or corrupt pixels ({str(e).splitlines()[0][:80]})"
            return result
    _check_pixels(result, pixels, search)
    return result


def _format_of(data: bytes) -> str:
    return "png" if data.startswith(b"\x89PNG") else "jpg" if data.startswith(b"\xff\xd8") else ""


def _facts(im) -> Optional[dict]:
    return read_facts(im.info)    # PNG text chunks, JPEG/GIF comments, XMP: whatever is read so far


def _check_pixels(result: Verification, pixels: np.ndarray, search: bool) -> None:
    if pixels.ndim == 2 or pixels.shape[-1] != 3:
        result.watermark = "not checked (not a colour image)"
    elif not wm.readable(pixels):
        result.watermark = "too small"
    else:
        result.mark = wm.read(pixels, search=search)
        result.watermark = "found" if result.mark else "not found"


def _read(path: Path) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as e:
        raise ValueError(f"cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError("a folder (give its files, or the folder itself to verify_paths)")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise ValueError(f"{st.st_size / 2 ** 30:.1f} GiB: too large to be an image this checks")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read ({e.strerror or e})") from None


def image_files(inputs: Iterable[Union[str, os.PathLike]]) -> Iterator[Path]:
    """Files as given; a folder gives its files (sorted, not recursive, hidden ones left out)."""
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            yield from sorted(c for c in p.iterdir() if not c.name.startswith(".") and not c.is_dir())
        else:
            yield p


def verify_paths(inputs: Iterable[Union[str, os.PathLike]], trust: Optional[bytes] = None,
                 search: bool = True) -> Iterator[Verification]:
    """`verify` for every file of `inputs` (files and folders), one at a time."""
    for path in image_files(inputs):
        yield verify(path, trust, search)
