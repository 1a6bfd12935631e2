"""`label_map.csv`, the one place that reads and checks it.

The split stage writes the file (`class_index,landmark_id,name`, class_index 0..K-1 in
file order); the trainer copies it beside the model and the evaluation reads both copies.
All of them parse it here, with the same strict rules, so a file one stage accepts is never
refused by another. Plain Python: no TensorFlow, so the trainer can check a split before its
workers join a cluster.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from landmarks import storage
from landmarks.artifacts import LABEL_MAP
from landmarks.errors import InputError

__all__ = [
    "LABEL_MAP",
    "LABEL_MAP_COLUMNS",
    "LabelEntry",
    "LabelMap",
    "parse_label_map",
    "read_label_map",
]

LABEL_MAP_COLUMNS = ("class_index", "landmark_id", "name")

_CLASS_INDEX = re.compile(r"[0-9]+")
# Canonical form only: the class folders are named str(landmark_id), so "007" would name
# a folder the split never wrote.
_LANDMARK_ID = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class LabelEntry:
    """One row of label_map.csv."""

    class_index: int
    landmark_id: int
    name: str


@dataclass(frozen=True)
class LabelMap:
    """Class index i (a model's output i) is `entries[i]`, as read from `source`.

    Iterating yields the entries in class-index order.
    """

    entries: tuple[LabelEntry, ...]
    source: str  # where it was read from, for error messages
    text: str  # the file as read, copied beside a trained model

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LabelEntry]:
        return iter(self.entries)

    @property
    def num_classes(self) -> int:
        return len(self.entries)

    @cached_property
    def landmark_ids(self) -> tuple[str, ...]:
        """The landmark ids as strings: the names of the class folders."""
        return tuple(str(e.landmark_id) for e in self.entries)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.entries)

    def index_of(self) -> dict[str, int]:
        """Class folder name (landmark id) -> class index."""
        return {lid: i for i, lid in enumerate(self.landmark_ids)}


def parse_label_map(text: str, source: str) -> LabelMap:
    """Parse and check the text of a label map.

    Rules: the header is exactly `class_index,landmark_id,name`; class_index runs 0, 1, 2,
    ... in file order; landmark_id is a non-negative integer, listed once; at least one
    class. Names are stripped and may be empty.

    Raises:
        InputError: naming `source`, the row and the field at fault.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = tuple(reader.fieldnames or ())
    if header != LABEL_MAP_COLUMNS:
        expected = ",".join(LABEL_MAP_COLUMNS)
        got = ",".join(header) or "empty"
        missing = [c for c in LABEL_MAP_COLUMNS if c not in header]
        if missing:
            raise InputError(
                f"missing column: the header must be {expected} (got {got}); "
                f"missing {', '.join(missing)}",
                file=source,
                row=1,
                field=missing[0],
            )
        raise InputError(f"the header must be exactly {expected} (got {got})", file=source, row=1)
    entries: list[LabelEntry] = []
    seen: dict[int, tuple[int, int]] = {}  # landmark id -> (class index, row)
    for record in reader:
        row = reader.line_num
        if None in record or any(v is None for v in record.values()):
            raise InputError(
                f"expected {len(LABEL_MAP_COLUMNS)} fields ({','.join(LABEL_MAP_COLUMNS)})",
                file=source,
                row=row,
            )
        raw_index = record["class_index"].strip()
        if not _CLASS_INDEX.fullmatch(raw_index):
            raise InputError(
                f"not an integer >= 0: {raw_index!r}", file=source, row=row, field="class_index"
            )
        if int(raw_index) != len(entries):
            raise InputError(
                f"expected class_index {len(entries)} (indices run 0..n-1 in file order), "
                f"got {raw_index!r}",
                file=source,
                row=row,
                field="class_index",
            )
        raw_id = record["landmark_id"].strip()
        if not raw_id:
            raise InputError("empty landmark_id", file=source, row=row, field="landmark_id")
        if not _LANDMARK_ID.fullmatch(raw_id):
            raise InputError(
                f"not a landmark id (an integer >= 0, no leading zeros): {raw_id!r}",
                file=source,
                row=row,
                field="landmark_id",
            )
        landmark = int(raw_id)
        if landmark in seen:
            raise InputError(
                f"landmark_id {landmark} already has class_index {seen[landmark][0]} "
                f"(row {seen[landmark][1]})",
                file=source,
                row=row,
                field="landmark_id",
            )
        seen[landmark] = (len(entries), row)
        entries.append(LabelEntry(len(entries), landmark, record["name"].strip()))
    if not entries:
        raise InputError("label map has no classes", file=source)
    return LabelMap(tuple(entries), source, text)


def read_label_map(directory: str) -> LabelMap:
    """Read and check `label_map.csv` in `directory` (a split or a trained model, local or remote).

    Raises:
        InputError: the file is missing, not UTF-8, or breaks a rule of `parse_label_map`.
    """
    uri = storage.join(directory, LABEL_MAP)
    if not storage.exists(uri):
        raise InputError("label map not found", file=uri)
    try:
        text = storage.read_text(uri)
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err})", file=uri) from err
    return parse_label_map(text, uri)
