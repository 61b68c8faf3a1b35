"""Labels for a data set's source files, from a `dataset.json` (NVIDIA's: `{"labels": [[name, label], ...]}`,
labels class numbers or vectors of numbers) or a CSV of `file,class` rows.

A label's file is its path inside the source (`cats/a.jpg`), or its bare name where no two source
images share it. Classes in a CSV are numbers (0, 1, ...) or names; names are numbered in sorted
order. Every image needs a label and every label an image: a mismatch is one clear error, never a
data set whose labels were quietly dropped (NVIDIA's tool writes `"labels": null` when one is missing)."""
from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from .._errors import ParamError, first_line

Label = Union[int, list]
HEADER_WORDS = {"file", "filename", "name", "path", "image"}


@dataclass
class LabelTable:
    labels: dict[str, Label]                          # file as written -> class number or vector
    origin: str                                       # where they came from, for messages
    class_names: list[str] = field(default_factory=list)   # class k's name, when the CSV named them


def _normal(name: str) -> str:
    name = str(name).replace("\\", "/")
    return name[2:] if name.startswith("./") else name


def parse_dataset_json(text: str, origin: str) -> Optional[LabelTable]:
    """A `dataset.json`'s labels; None when it says `"labels": null`."""
    try:
        raw = json.loads(text)["labels"]
        if raw is None:
            return None
        table = {_normal(k): v for k, v in raw}
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{origin}: not a labels file: expected {{\"labels\": [[name, label], ...]}} "
                         f"({first_line(e)})") from None
    for name, v in table.items():
        ok = (isinstance(v, int) and not isinstance(v, bool) and v >= 0) or (
            isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v))
        if not ok:
            raise ValueError(f"{origin}: the label of {name} is {json.dumps(v)}: expected a class number >= 0 "
                             f"or a list of numbers")
    kinds = {type(v) for v in table.values()}
    if len(kinds) > 1 or len({len(v) for v in table.values() if isinstance(v, list)}) > 1:
        raise ValueError(f"{origin}: labels mix class numbers and vectors, or vectors of several lengths")
    return LabelTable(table, origin)


def parse_csv(text: str, origin: str) -> LabelTable:
    """`file,class` rows (an optional first row `file,class` is a header)."""
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    if rows and rows[0][0].strip().lower() in HEADER_WORDS:
        rows = rows[1:]
    table: dict[str, str] = {}
    for k, row in enumerate(rows):
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(f"{origin}: row {k + 1} is {','.join(row)!r}: expected file,class")
        name = _normal(row[0].strip())
        if name in table:
            raise ValueError(f"{origin}: {name} is labelled twice")
        table[name] = row[1].strip()
    if not table:
        raise ValueError(f"{origin}: no labels in it")
    if all(v.isdigit() for v in table.values()):
        return LabelTable({k: int(v) for k, v in table.items()}, origin)
    names = sorted(set(table.values()))
    index = {n: i for i, n in enumerate(names)}
    return LabelTable({k: index[v] for k, v in table.items()}, origin, names)


def read_labels(path: str | os.PathLike) -> Optional[LabelTable]:
    """A labels file: `*.json` is a dataset.json, anything else a CSV."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")    # a spreadsheet's CSV may start with a BOM
    except FileNotFoundError:
        raise ValueError(f"{path}: no such labels file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: unreadable labels file ({first_line(e)})") from None
    return parse_dataset_json(text, str(path)) if path.suffix.lower() == ".json" else parse_csv(text, str(path))


def match_labels(table: LabelTable, names: Sequence[str], source: str) -> list[Label]:
    """The label of each source file, in order; ValueError when a file has none or a label no file."""
    bare = Counter(n.rsplit("/", 1)[-1] for n in names)
    used: set[str] = set()
    out, missing = [], []
    for name in names:
        base = name.rsplit("/", 1)[-1]
        key = name if name in table.labels else base if bare[base] == 1 and base in table.labels else None
        if key is None:
            missing.append(name)
            continue
        used.add(key)
        out.append(table.labels[key])
    if missing:
        raise ParamError(f"{table.origin} has no label for {len(missing)} of the {len(names)} images in {source} "
                         f"(e.g. {missing[0]}): label every image, or use {{labels=none}} for an unlabelled set",
                         "labels")
    unused = [k for k in table.labels if k not in used]
    if unused:
        raise ValueError(f"{table.origin} labels {len(unused)} files that are not images in {source} "
                         f"(e.g. {unused[0]}): names are paths inside the source, such as {names[0]}")
    return out
