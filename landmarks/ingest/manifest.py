"""The ingest output layout, per-row records, and the journal that makes runs resumable.

Layout of an ingest output directory `OUT` (local path or `gs://`), which later stages
read:

- `OUT/images/<a>/<b>/<c>/<id>.jpg`: kept images, `a`, `b`, `c` being the first three
  characters of the id (the GLDv2 layout, so no directory holds millions of files).
- `OUT/manifest.csv`: one row per metadata row, columns `MANIFEST_COLUMNS`; `status` is
  `ok`, `failed` (with `reason` as `code: detail`) or `duplicate` (with `duplicate_of`,
  the id of the kept image with the same sha256); `path` is relative to `OUT`, empty
  unless `ok`.
- `OUT/summary.json`: counts per status and per failure reason code, timings.
- `OUT/labels.csv`: `landmark_id,name`, only when a label file was given.
- `OUT/.ingest/journal-*.csv`: progress of a run that has not finished. Segments are
  written atomically every few seconds and removed once the manifest holds their rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from landmarks import storage
from landmarks.artifacts import INGEST_MANIFEST

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "id",
    "url",
    "landmark_id",
    "status",
    "reason",
    "duplicate_of",
    "sha256",
    "width",
    "height",
    "path",
)
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_DUPLICATE = "duplicate"
STATUSES = (STATUS_OK, STATUS_FAILED, STATUS_DUPLICATE)

IMAGES_DIR = "images"
JOURNAL_DIR = ".ingest"


def image_rel_path(image_id: str) -> str:
    """`images/a/b/c/<id>.jpg` for an id already validated as path-safe."""
    return f"{IMAGES_DIR}/{image_id[0]}/{image_id[1]}/{image_id[2]}/{image_id}.jpg"


def id_from_image_rel(rel: str) -> str | None:
    """The id of `a/b/c/<id>.jpg` (relative to `OUT/images`), or None for anything else.

    Leftover `.<name>.part` files of a killed write do not count as images.
    """
    parts = rel.split("/")
    if len(parts) != 4 or not parts[3].endswith(".jpg") or parts[3].startswith("."):
        return None
    image_id = parts[3][: -len(".jpg")]
    if len(image_id) < 3 or (parts[0], parts[1], parts[2]) != tuple(image_id[:3]):
        return None
    return image_id


def reason_code(reason: str) -> str:
    """`http_404` from `http_404: 404 Not Found`."""
    return reason.split(":", 1)[0].strip()


@dataclass(frozen=True, slots=True)
class Record:
    """One manifest row."""

    id: str
    url: str
    landmark_id: str
    status: str
    reason: str = ""
    duplicate_of: str = ""
    sha256: str = ""
    width: int | None = None
    height: int | None = None
    path: str = ""

    def as_row(self) -> list[str]:
        return [
            self.id,
            self.url,
            self.landmark_id,
            self.status,
            self.reason,
            self.duplicate_of,
            self.sha256,
            "" if self.width is None else str(self.width),
            "" if self.height is None else str(self.height),
            self.path,
        ]

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Record:
        return cls(
            id=row["id"],
            url=row["url"],
            landmark_id=row["landmark_id"],
            status=row["status"],
            reason=row.get("reason", ""),
            duplicate_of=row.get("duplicate_of", ""),
            sha256=row.get("sha256", ""),
            width=int(row["width"]) if row.get("width") else None,
            height=int(row["height"]) if row.get("height") else None,
            path=row.get("path", ""),
        )

    def with_status(self, status: str, **changes: object) -> Record:
        return replace(self, status=status, **changes)  # type: ignore[arg-type]


def records_to_csv(records: list[Record]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(r.as_row() for r in records)
    return buf.getvalue()


def _parse_records(text: str, source: str) -> list[Record]:
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
        log.warning("ignoring %s: not an ingest manifest (columns %s)", source, reader.fieldnames)
        return []
    out = []
    for row in reader:
        # A manifest or journal is only ever written whole, but a hand-edited one may not be.
        if row.get("status") not in STATUSES or None in row.values():
            log.warning("ignoring malformed record in %s line %d", source, reader.line_num)
            continue
        try:
            out.append(Record.from_row(row))
        except ValueError:
            log.warning("ignoring malformed record in %s line %d", source, reader.line_num)
    return out


class Journal:
    """Append-only progress of a run, flushed as whole segment files.

    Neither local disk nor GCS offers an atomic append, so each flush writes a new
    segment atomically. A run killed at any moment loses only records not yet flushed,
    and the images of those rows are on disk already: the next run finds them there,
    checks them and keeps them without fetching again.
    """

    def __init__(self, out: str, *, flush_every: int = 1000, flush_seconds: float = 5.0) -> None:
        self.out = out
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        self._prefix = f"journal-{stamp}-{os.getpid()}"
        self._pending: list[Record] = []
        self._written: list[str] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def add(self, record: Record) -> None:
        with self._lock:
            self._pending.append(record)
            due = (
                len(self._pending) >= self.flush_every
                or time.monotonic() - self._last_flush >= self.flush_seconds
            )
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if not pending:
                return
            name = f"{self._prefix}-{len(self._written):06d}.csv"
            uri = storage.join(self.out, JOURNAL_DIR, name)
            storage.write_text(uri, records_to_csv(pending), content_type="text/csv")
            self._written.append(uri)

    @staticmethod
    def segments(out: str) -> list[str]:
        root = storage.join(out, JOURNAL_DIR)
        names = [n for n in storage.list_files(root) if "/" not in n and n.startswith("journal-")]
        # Timestamped names sort in write order across runs.
        return [storage.join(root, n) for n in sorted(names) if n.endswith(".csv")]

    @staticmethod
    def load(out: str) -> dict[str, Record]:
        """The latest known record per id: the manifest, then journal segments in order."""
        known: dict[str, Record] = {}
        manifest = storage.join(out, INGEST_MANIFEST)
        if storage.exists(manifest):
            for record in _parse_records(storage.read_text(manifest), manifest):
                known[record.id] = record
        for segment in Journal.segments(out):
            for record in _parse_records(storage.read_text(segment), segment):
                known[record.id] = record
        return known

    @staticmethod
    def clear(out: str) -> None:
        """Remove every segment, once the manifest holds their records."""
        for segment in Journal.segments(out):
            storage.delete(segment)
        if not storage.is_remote(out):
            with contextlib.suppress(OSError):  # not empty: someone else's files, keep them
                Path(out, JOURNAL_DIR).rmdir()
