"""What a data set is made from: a folder of images (searched recursively) or a zip of them, listed in
the order NVIDIA's `dataset_tool.py` gives them numbers.

That order is the sorted path parts for a folder (`a/x.png` before `a-b/y.png`) and the sorted names
for a zip (`a-b/y.png` before `a/x.png`), as NVIDIA's tool sorts `Path` objects and zip names. An
image is a file whose extension Pillow knows; macOS's metadata twins (`__MACOSX/`, `._name`) carry
such extensions but no picture and are left out, counted. Each item keeps a signature (size and
mtime, or size and CRC) that tells a resumed run whether the file is still the one it began with."""
from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .._errors import first_line
from .dataset import LABELS_FILE, LazyZip, image_extensions

# A zip member is read whole into memory; one that claims more than this is refused unread.
MAX_MEMBER_BYTES = 1 << 30
# What reading a zip member raises: a bad CRC, a truncated or encrypted member, a compression zipfile lacks.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError)


@dataclass(frozen=True)
class SourceItem:
    name: str         # path inside the source, '/'-separated
    signature: str    # what a resumed run compares


def _is_image(name: str, exts: set[str]) -> bool:
    return "." + name.rsplit(".", 1)[-1].lower() in exts   # NVIDIA's test: the text after the last dot


def _is_mac_metadata(name: str) -> bool:
    parts = name.split("/")
    return parts[0] == "__MACOSX" or parts[-1].startswith("._")


class ImageSource(LazyZip):
    """A folder or zip of images. Picklable: each worker process opens the zip for itself."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            self.kind = "folder"
            files = {p.relative_to(self.path).as_posix(): p for p in self.path.rglob("*") if p.is_file()}
            names = sorted(files, key=lambda n: n.split("/"))
            signature = {n: f"{st.st_size}:{st.st_mtime_ns}" for n in names for st in [files[n].stat()]}
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self.kind = "zip"
            infos = {i.filename: i for i in self._open_zip().infolist() if not i.is_dir()}
            names = sorted(infos)
            signature = {n: f"{infos[n].file_size}:{infos[n].CRC:08x}" for n in names}
        elif self.path.exists():
            raise ValueError(f"{self.path}: not a folder or a zip of images")
        else:
            raise ValueError(f"{self.path}: no such folder or zip")
        exts = image_extensions()
        pictures = [n for n in names if _is_image(n, exts)]
        self.mac_metadata = [n for n in pictures if _is_mac_metadata(n)]
        self.items = [SourceItem(n, signature[n]) for n in pictures if not _is_mac_metadata(n)]
        self.other_files = len(names) - len(pictures)      # text, json, videos...: not images
        self.has_labels_file = LABELS_FILE in names

    def __len__(self) -> int:
        return len(self.items)

    def describe(self, name: str) -> str:
        """How messages name one of the source's files."""
        return str(self.path / name) if self.kind == "folder" else f"{self.path}:{name}"

    def open(self, name: str, whole: bool = True) -> BinaryIO:
        """One of the files, opened for reading; ValueError (one line) when it cannot be. A zip member
        is read `whole` and its CRC checked, or streamed (a header's worth read, nothing checked)."""
        try:
            if self.kind == "folder":
                return open(self.path / name, "rb")
            info = self._open_zip().getinfo(name)
            if not whole:
                return self._open_zip().open(info)
            if info.file_size > MAX_MEMBER_BYTES:
                raise ValueError(f"{self.describe(name)}: {info.file_size} bytes is too large for an image")
            return io.BytesIO(self._open_zip().read(info))
        except ZIP_ERRORS as e:
            raise ValueError(f"{self.describe(name)}: corrupt zip member ({first_line(e)})") from None
        except OSError as e:
            raise ValueError(f"{self.describe(name)}: cannot read it ({e.strerror or first_line(e)})") from None

    def read_text(self, name: str) -> str:
        if self.kind == "folder":
            return (self.path / name).read_text(encoding="utf-8")
        return self._open_zip().read(name).decode("utf-8")
