"""An image data set read the way NVIDIA's `training/dataset.py` reads it, so that training and
metrics see the same images in the same order as NVIDIA's code does.

A source is a folder (searched recursively) or a zip, NVIDIA's `dataset_tool.py` layout or any
other. Images are the files with an extension Pillow knows, sorted by their relative name;
`dataset.json` (`{"labels": [[name, label], ...]}`) gives integer classes or float vectors. Every
image must have the data set's size and channel count: the first image sets them, the others are
checked as they are read. Items are `[H, W, C] uint8` (the library's image layout) and a float32
label (one-hot for classes, [0] when unlabelled).

Decoding is bounded: an image's pixel count is read from its header and checked before decoding.
A zip member is read whole and its CRC checked, so a corrupt member is an error naming it, never
silently wrong pixels."""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from .._errors import first_line
from ..faces.photo import MAX_PIXELS

LABELS_FILE = "dataset.json"


def image_extensions() -> set[str]:
    Image.init()    # fills Pillow's registry of codecs; the set NVIDIA's reader also uses
    return {ext.lower() for ext in Image.EXTENSION}


class LazyZip:
    """A zip of `self.path` opened on first use, once per process: pickling leaves the handle behind, so
    each DataLoader or pool worker opens its own (a shared one would share its file offset too)."""
    path: Path
    _zip: Optional[zipfile.ZipFile] = None

    def _open_zip(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def __getstate__(self):
        return dict(self.__dict__, _zip=None)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None


class ImageDataset(LazyZip):
    """Random access to a data set's images and labels; picklable (each DataLoader worker opens its own zip).

    `max_size` keeps a random subset of that many (NVIDIA's rule: shuffled with `random_seed`, then
    sorted); `xflip` appends every image mirrored (the data set doubles); `use_labels` reads
    `dataset.json`; `resolution`, when given, must equal the images' size."""

    def __init__(self, path: str | os.PathLike, *, resolution: Optional[int] = None, use_labels: bool = False,
                 max_size: Optional[int] = None, xflip: bool = False, random_seed: int = 0):
        self.path = Path(path)
        self.use_labels = use_labels
        if self.path.is_dir():
            self._type = "dir"
            names = [p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()]
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self._type = "zip"
            names = [n for n in self._open_zip().namelist() if not n.endswith("/")]
        elif self.path.exists():
            raise ValueError(f"{self.path}: not a folder or a zip of images")
        else:
            raise ValueError(f"{self.path}: no such data set")
        self._all_names = set(names)
        exts = image_extensions()
        self.image_names = sorted(n for n in names if os.path.splitext(n)[1].lower() in exts)
        if not self.image_names:
            raise ValueError(f"{self.path}: no images found")
        first = self._load_raw(0)
        self.image_shape = [first.shape[2], first.shape[0], first.shape[1]]   # [C, H, W], as NVIDIA reports it
        if resolution is not None and (first.shape[0] != resolution or first.shape[1] != resolution):
            raise ValueError(f"{self.path}: images are {first.shape[1]}x{first.shape[0]}, not {resolution}x{resolution}")
        self._raw_labels = self._load_labels() if use_labels else None
        idx = np.arange(len(self.image_names), dtype=np.int64)
        if max_size is not None and idx.size > max_size:
            np.random.RandomState(random_seed % (1 << 31)).shuffle(idx)
            idx = np.sort(idx[:max_size])
        flips = np.zeros(idx.size, dtype=np.uint8)
        if xflip:
            idx, flips = np.tile(idx, 2), np.concatenate([flips, np.ones_like(flips)])
        self.raw_idx, self.xflip = idx, flips

    # --- what a training loop and a metric ask ------------------------------------------------

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def resolution(self) -> int:
        assert self.image_shape[1] == self.image_shape[2]
        return self.image_shape[1]

    @property
    def num_channels(self) -> int:
        return self.image_shape[0]

    @property
    def has_labels(self) -> bool:
        return self._raw_labels is not None

    @property
    def label_dim(self) -> int:
        """Width of the label vector G and D are conditioned on (0 when unlabelled)."""
        raw = self._raw_labels
        if raw is None:
            return 0
        return int(raw.max()) + 1 if raw.dtype == np.int64 else int(raw.shape[1])

    def __len__(self) -> int:
        return int(self.raw_idx.size)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        image = self._load_raw(int(self.raw_idx[idx]))
        if self.xflip[idx]:
            image = image[:, ::-1, :]
        return np.ascontiguousarray(image), self.get_label(idx)

    def get_label(self, idx: int) -> np.ndarray:
        raw = self._raw_labels
        if raw is None:
            return np.zeros([0], np.float32)
        label = raw[self.raw_idx[idx]]
        if raw.dtype == np.int64:
            onehot = np.zeros([self.label_dim], np.float32)
            onehot[label] = 1
            return onehot
        return label.astype(np.float32).copy()

    def digest(self) -> str:
        """sha256 of what identifies the data: names, sizes and CRCs (zips) or sizes and mtimes (folders),
        the labels and the subset. Cheap on 70 000 images; a statistics cache keys on it."""
        h = hashlib.sha256()
        h.update(json.dumps([self._type, self.use_labels, self.raw_idx.tolist(), self.xflip.tolist()]).encode())
        for name in self.image_names + ([LABELS_FILE] if LABELS_FILE in self._all_names else []):
            if self._type == "zip":
                info = self._open_zip().getinfo(name)
                h.update(f"{name}\0{info.file_size}\0{info.CRC}\n".encode())
            else:
                st = (self.path / name).stat()
                h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    # --- reading -------------------------------------------------------------------------------

    def _open(self, name: str):
        if self._type == "zip":
            return io.BytesIO(self._open_zip().read(name))    # read whole: the member's CRC is checked
        return open(self.path / name, "rb")

    def _load_raw(self, raw_idx: int) -> np.ndarray:
        name = self.image_names[raw_idx]
        try:
            with self._open(name) as f, Image.open(f) as img:
                if hasattr(self, "image_shape") and (img.height, img.width) != tuple(self.image_shape[1:]):
                    raise ValueError(f"is {img.width}x{img.height}, the data set's images are "
                                     f"{self.image_shape[2]}x{self.image_shape[1]}")
                if img.width * img.height > MAX_PIXELS:
                    raise ValueError(f"is {img.width}x{img.height}: too large an image")
                image = np.array(img)
        except ValueError as e:
            raise ValueError(f"{self.path}: {name} {e}") from None
        except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
            raise ValueError(f"{self.path}: {name} is not a readable image ({first_line(e)})") from None
        except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as e:
            # A bad CRC, an encrypted member, a compression zipfile lacks.
            raise ValueError(f"{self.path}: {name} is a corrupt zip member ({first_line(e)})") from None
        if image.ndim == 2:
            image = image[:, :, np.newaxis]
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(f"{self.path}: {name} is not an 8-bit image (mode gives {image.dtype} {list(image.shape)})")
        if hasattr(self, "image_shape") and image.shape[2] != self.image_shape[0]:
            raise ValueError(f"{self.path}: {name} has {image.shape[2]} channels, the data set's images have "
                             f"{self.image_shape[0]}")
        return image

    def _load_labels(self) -> Optional[np.ndarray]:
        if LABELS_FILE not in self._all_names:
            return None
        try:
            with self._open(LABELS_FILE) as f:
                labels = json.load(f)["labels"]
        except (ValueError, KeyError, TypeError, OSError) as e:
            raise ValueError(f"{self.path}: {LABELS_FILE} is not a labels file ({first_line(e)})") from None
        if labels is None:
            return None
        try:
            table = {str(k).replace("\\", "/"): v for k, v in labels}
        except (TypeError, ValueError):
            raise ValueError(f"{self.path}: {LABELS_FILE} labels are not [name, label] pairs") from None
        missing = [n for n in self.image_names if n not in table]
        if missing:
            raise ValueError(f"{self.path}: {LABELS_FILE} has no label for {missing[0]} "
                             f"({len(missing)} of {len(self.image_names)} images unlabelled)")
        array = np.array([table[n] for n in self.image_names])
        if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"{self.path}: {LABELS_FILE} labels must be class numbers or vectors of numbers")
        if array.ndim == 1:
            if not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
                raise ValueError(f"{self.path}: {LABELS_FILE} class labels must be integers >= 0")
            return array.astype(np.int64)
        if not np.isfinite(array).all():
            raise ValueError(f"{self.path}: {LABELS_FILE} label vectors hold NaN or infinity")
        return array.astype(np.float32)



def open_dataset(path: str | os.PathLike, **kwargs) -> ImageDataset:
    """The one way in: `ImageDataset(path, **kwargs)`."""
    return ImageDataset(path, **kwargs)
