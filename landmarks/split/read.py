"""Reading: an ingest output (its manifest and labels, checked row by row) and a split's manifest.

An ingest output directory (local, gs://, s3:// or minio://) holds `manifest.csv` (only rows
with status `ok` are used) and optionally `labels.csv` (`landmark_id,name`). Every bad row is
an InputError naming the file, the row and the field.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from landmarks import storage
from landmarks.artifacts import INGEST_LABELS, INGEST_MANIFEST, SPLIT_MANIFEST
from landmarks.errors import InputError
from landmarks.ingest.manifest import STATUS_OK
from landmarks.split.plan import MANIFEST_COLUMNS, SPLITS, IngestImage, SplitRow

INGEST_COLUMNS = ("id", "landmark_id", "status", "sha256", "path")

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_LANDMARK_ID = re.compile(r"^[0-9]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_ingest_manifest(ingest_dir: str) -> tuple[list[IngestImage], int]:
    """Rows with status ok, validated; and the number of data rows in the file."""
    uri = storage.join(ingest_dir, INGEST_MANIFEST)
    if not storage.exists(uri):
        raise InputError("not found: is this an ingest output directory?", file=uri)
    # utf-8-sig: a manifest saved from a spreadsheet starts with a byte-order mark.
    reader = csv.DictReader(io.StringIO(storage.read_text(uri, "utf-8-sig"), newline=""))
    missing = [c for c in INGEST_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=uri, row=1)
    images: list[IngestImage] = []
    seen: dict[str, int] = {}
    total = 0
    for record in reader:
        total += 1
        line = reader.line_num
        if (record.get("status") or "").strip() != STATUS_OK:
            continue

        def bad(message: str, column: str, line: int = line) -> InputError:
            return InputError(message, file=uri, row=line, field=column)

        image_id = (record["id"] or "").strip()
        if not _ID.match(image_id):
            raise bad(f"invalid id {image_id!r} (letters, digits, '_' and '-' only)", "id")
        if image_id in seen:
            raise bad(f"id {image_id} also on row {seen[image_id]}", "id")
        seen[image_id] = line
        landmark = (record["landmark_id"] or "").strip()
        if not _LANDMARK_ID.match(landmark):
            raise bad(
                f"landmark_id must be a non-negative integer, got {landmark!r}", "landmark_id"
            )
        digest = (record["sha256"] or "").strip().lower()
        if not _SHA256.match(digest):
            raise bad(f"sha256 must be 64 hex characters, got {digest!r}", "sha256")
        rel = (record["path"] or "").strip()
        parts = rel.split("/")
        if not rel or rel.startswith("/") or ".." in parts or "\\" in rel:
            raise bad(f"path must be relative to the ingest directory, got {rel!r}", "path")
        images.append(IngestImage(image_id, int(landmark), digest, rel, line))
    return images, total


def read_labels(ingest_dir: str) -> dict[int, str]:
    """`labels.csv` of an ingest output as {landmark_id: name}; empty if the file is absent."""
    uri = storage.join(ingest_dir, INGEST_LABELS)
    if not storage.exists(uri):
        return {}
    reader = csv.DictReader(io.StringIO(storage.read_text(uri, "utf-8-sig"), newline=""))
    missing = [c for c in ("landmark_id", "name") if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=uri, row=1)
    names: dict[int, str] = {}
    for record in reader:
        landmark = (record["landmark_id"] or "").strip()
        if not _LANDMARK_ID.match(landmark):
            raise InputError(
                f"landmark_id must be a non-negative integer, got {landmark!r}",
                file=uri,
                row=reader.line_num,
                field="landmark_id",
            )
        names[int(landmark)] = (record["name"] or "").strip()
    return names


def read_split_manifest(split_dir: str) -> list[SplitRow]:
    """The manifest of a split."""
    uri = storage.join(split_dir, SPLIT_MANIFEST)
    reader = csv.DictReader(io.StringIO(storage.read_text(uri), newline=""))
    if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
        raise InputError(f"expected columns {','.join(MANIFEST_COLUMNS)}", file=uri, row=1)
    rows = []
    for record in reader:
        numbers = {}
        for column in ("landmark_id", "class_index"):
            try:
                numbers[column] = int(record[column])
            except (TypeError, ValueError):
                raise InputError(
                    f"not an integer: {record[column]!r}",
                    file=uri,
                    row=reader.line_num,
                    field=column,
                ) from None
        if record["split"] not in SPLITS:
            raise InputError(
                f"split must be one of {', '.join(SPLITS)}, got {record['split']!r}",
                file=uri,
                row=reader.line_num,
                field="split",
            )
        rows.append(
            SplitRow(
                record["id"],
                numbers["landmark_id"],
                numbers["class_index"],
                record["split"],
                record["sha256"],
                record["path"],
            )
        )
    return rows


def check_sources(ingest: str, images: list[IngestImage]) -> None:
    """Fail before touching the output if the manifest names an image that is not there."""
    manifest_uri = storage.join(ingest, INGEST_MANIFEST)
    if storage.is_remote(ingest):
        present = set(storage.list_files(ingest))  # one listing instead of a request per image
        missing = [i for i in images if i.src not in present]
    else:
        missing = [i for i in images if not Path(ingest, i.src).is_file()]
    if missing:
        first = min(missing, key=lambda i: i.row)
        more = f" ({len(missing) - 1} more rows name missing images)" if len(missing) > 1 else ""
        raise InputError(
            f"image {storage.join(ingest, first.src)} not found{more}",
            file=manifest_uri,
            row=first.row,
            field="path",
        )
