"""Read and validate GLDv2-style metadata (`id,url,landmark_id`) and label files.

Where a problem is reported:

- Row numbers are line numbers of the file, the header being row 1, so they match what
  an editor or a spreadsheet shows (a quoted field spanning lines counts from the line
  the record starts on).
- File-level problems raise `InputError` before anything is written: the file cannot be
  read, is empty or not UTF-8, its header lacks a column or has an extra one, or no row
  at all is valid.
- Row-level problems fail that row only; it is kept in the manifest with a reason of the
  form `code: row N, field 'f': detail`, and the other rows go on. Codes: `bad_row`
  (wrong number of fields), `invalid_id`, `invalid_landmark_id`, `invalid_url`,
  `conflicting_id` (the same id with a different url or landmark id: every such row
  fails, since we cannot tell which one is right).
- Rows repeated exactly (same id, url and landmark id) are collapsed into the first one.

Ids become file names, so only `[0-9A-Za-z_-]` of 3 to 128 characters are accepted
(GLDv2 ids are 16 lowercase hex characters). That rules out `..`, separators, absolute
paths and empty ids, so no id can place a file outside the output directory.

Validation is vectorised over the whole table: 4 million rows take seconds, not minutes.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import pandas as pd

from landmarks import storage
from landmarks.errors import InputError

log = logging.getLogger(__name__)

METADATA_COLUMNS = ("id", "url", "landmark_id")
LABEL_COLUMNS = ("landmark_id", "category")
ID_PATTERN = r"[0-9A-Za-z_-]{3,128}"
LANDMARK_ID_PATTERN = r"[0-9]{1,18}"
URL_SCHEMES = ("http", "https", "gs")
# Scheme, then a host or bucket; the rest is the server's business.
_URL_PATTERN = r"(?:[hH][tT][tT][pP][sS]?://[^/\s?#]+(?:[/?#]\S*)?|gs://[^/\s]+/\S+)"
_MAX_LOGGED = 10

# GLDv2 URLs can be long; the default 128 KiB field limit only guards against runaway quotes.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class Metadata:
    """A validated metadata table.

    Attributes:
        path: Where it was read from.
        rows: One row per record in file order (exact repeats collapsed), columns
            `row` (line number), `id`, `url`, `landmark_id` (as written) and `error`
            (empty for a valid row, else the manifest reason).
        collapsed: How many exact repeats were dropped.
    """

    path: str
    rows: pd.DataFrame
    collapsed: int = 0

    @property
    def valid(self) -> pd.DataFrame:
        return self.rows[self.rows["error"] == ""]

    @property
    def invalid(self) -> pd.DataFrame:
        return self.rows[self.rows["error"] != ""]


@contextmanager
def _open_binary(uri: str) -> Iterator[IO[bytes]]:
    """A byte stream over a local file (read lazily) or an object (gs://, s3://, minio://)."""
    try:
        if storage.is_remote(uri):
            binary: IO[bytes] = io.BytesIO(storage.read_bytes(uri))
        else:
            path = Path(uri)
            if path.is_dir():
                raise InputError("is a directory, expected a CSV file", file=uri)
            binary = path.open("rb")
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError("file not found", file=uri) from None
    except Exception as err:  # NotFound, Forbidden, PermissionError: all mean "cannot read"
        raise InputError(f"cannot read: {err}", file=uri) from None
    with binary:
        yield binary


def _decoded_lines(binary: IO[bytes], uri: str) -> Iterator[str]:
    """Lines decoded one by one, so a bad byte is reported on its own line."""
    for number, raw in enumerate(binary, 1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]  # spreadsheet exports often start with a BOM
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(
                f"not valid UTF-8 (byte {err.start + 1} of the line is {raw[err.start]:#04x})",
                file=uri,
                row=number,
            ) from None


def _read_header(reader: Iterator[list[str]], uri: str, expected: tuple[str, ...]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(
            f"file is empty, expected a header '{','.join(expected)}'", file=uri
        ) from None
    names = [h.strip() for h in header]
    for name in names:
        if names.count(name) > 1:
            raise InputError(f"column '{name}' appears twice", file=uri, row=1, field=name)
    missing = [c for c in expected if c not in names]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; the header is '{','.join(names)}'"
            f", expected '{','.join(expected)}'",
            file=uri,
            row=1,
            field=missing[0],
        )
    extra = [n for n in names if n not in expected]
    if extra:
        raise InputError(
            f"unexpected column(s) {', '.join(repr(e) for e in extra)}"
            f"; expected exactly '{','.join(expected)}'",
            file=uri,
            row=1,
            field=extra[0],
        )
    return names


def _records(
    binary: IO[bytes], uri: str, expected: tuple[str, ...], limit: int | None
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    reader = csv.reader(_decoded_lines(binary, uri))
    try:
        names = _read_header(reader, uri, expected)
    except csv.Error as err:
        raise InputError(f"not a readable CSV file: {err}", file=uri, row=1) from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        count = 0
        while limit is None or count < limit:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise InputError(f"not valid CSV: {err}", file=uri, row=start) from None
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            count += 1
            yield start, record

    return names, rows()


def read_metadata(uri: str, *, limit: int | None = None, check_urls: bool = True) -> Metadata:
    """Read and validate a metadata CSV, streaming it (only `limit` rows are read if set).

    Args:
        uri: Local path or gs:// URI of an `id,url,landmark_id` CSV (columns in any order).
        limit: Read only the first `limit` data rows.
        check_urls: Validate the url column; off when images come from a local directory
            and the url is only carried along for attribution.

    Raises:
        InputError: for a file-level problem (see the module docstring).
    """
    with _open_binary(uri) as binary:
        names, records = _records(binary, uri, METADATA_COLUMNS, limit)
        at_id, at_url, at_landmark = (names.index(c) for c in METADATA_COLUMNS)
        width = len(names)
        lines: list[int] = []
        ids: list[str] = []
        urls: list[str] = []
        landmarks: list[str] = []
        structure: list[str] = []
        for line, record in records:
            lines.append(line)
            if len(record) == width:  # the common case, kept lean for 4M-row files
                ids.append(record[at_id].strip())
                urls.append(record[at_url].strip())
                landmarks.append(record[at_landmark].strip())
                structure.append("")
                continue
            for column, position in ((ids, at_id), (urls, at_url), (landmarks, at_landmark)):
                column.append(record[position].strip() if position < len(record) else "")
            structure.append(
                f"bad_row: row {line}: {len(record)} field(s), expected {width}"
                " (an unquoted comma in a url?)"
            )
    if not lines:
        raise InputError("no data rows after the header", file=uri)

    frame = pd.DataFrame(
        {
            "row": lines,
            "id": ids,
            "url": urls,
            "landmark_id": landmarks,
            "error": structure,
        }
    )
    before = len(frame)
    frame = frame.drop_duplicates(subset=["id", "url", "landmark_id", "error"], keep="first")
    collapsed = before - len(frame)
    if collapsed:
        log.info("%s: collapsed %d exact repeated row(s)", uri, collapsed)

    _flag(frame, "id", ~frame["id"].str.fullmatch(ID_PATTERN), "invalid_id", _explain_id)
    _flag(
        frame,
        "landmark_id",
        ~frame["landmark_id"].str.fullmatch(LANDMARK_ID_PATTERN),
        "invalid_landmark_id",
        lambda v: f"{v!r} is not a non-negative integer",
    )
    if check_urls:
        _flag(frame, "url", ~frame["url"].str.fullmatch(_URL_PATTERN), "invalid_url", _explain_url)
    _flag_conflicts(frame)
    frame = frame.reset_index(drop=True)

    metadata = Metadata(path=uri, rows=frame, collapsed=collapsed)
    bad = metadata.invalid
    if len(bad) == len(frame):
        first = bad.iloc[0]
        raise InputError(
            f"no valid rows ({len(bad)} rejected); the first: {first['error']}", file=uri
        )
    for _, row in bad.head(_MAX_LOGGED).iterrows():
        log.warning("%s: %s", uri, row["error"])
    if len(bad) > _MAX_LOGGED:
        log.warning("%s: %d more invalid rows (see the manifest)", uri, len(bad) - _MAX_LOGGED)
    return metadata


def _flag(frame: pd.DataFrame, field: str, mask: pd.Series, code: str, explain) -> None:
    """Mark rows matching `mask` (and not yet failed) with a located reason."""
    target = mask & (frame["error"] == "")
    if not target.any():
        return
    rows = frame.loc[target, "row"]
    values = frame.loc[target, field]
    frame.loc[target, "error"] = [
        f"{code}: row {r}, field '{field}': {explain(v)}" for r, v in zip(rows, values, strict=True)
    ]


def _explain_id(value: str) -> str:
    if not value:
        return "empty id"
    if value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", value):
        return f"{value!r} is an absolute path"
    if ".." in value:
        return f"{value!r} contains '..' and could escape the output directory"
    if "/" in value or "\\" in value:
        return f"{value!r} contains a path separator"
    if len(value) < 3:
        return f"{value!r} is shorter than 3 characters (the a/b/c layout needs 3)"
    if len(value) > 128:
        return f"id of {len(value)} characters is longer than 128"
    return f"{value!r} has characters outside [0-9A-Za-z_-]"


def _explain_url(value: str) -> str:
    if not value:
        return "empty url"
    scheme = urlsplit(value).scheme if "://" in value else ""
    if not scheme:
        return f"{value!r} has no scheme (expected {', '.join(URL_SCHEMES)})"
    if scheme.lower() not in URL_SCHEMES:
        return f"scheme {scheme!r} is not allowed (expected {', '.join(URL_SCHEMES)})"
    return f"{value!r} has no host or object name, or contains whitespace"


def _flag_conflicts(frame: pd.DataFrame) -> None:
    """Fail every row of an id that appears with different urls or landmark ids."""
    candidates = frame[frame["error"] == ""]
    repeated = candidates[candidates["id"].duplicated(keep=False)]
    if repeated.empty:
        return
    for image_id, group in repeated.groupby("id", sort=False):
        field = "url" if group["url"].nunique() > 1 else "landmark_id"
        rows = group["row"].tolist()
        for position, row in zip(group.index, rows, strict=True):
            others = ", ".join(str(r) for r in rows if r != row)
            frame.at[position, "error"] = (
                f"conflicting_id: row {row}, field '{field}': id {image_id!r} also appears on"
                f" row(s) {others} with a different {field.replace('_', ' ')}"
            )


def category_name(category: str) -> str:
    """`Eiffel Tower` from `http://commons.wikimedia.org/wiki/Category:Eiffel_Tower`."""
    last = unquote(urlsplit(category).path.rstrip("/").rsplit("/", 1)[-1]) or category
    return last.removeprefix("Category:").replace("_", " ").strip()


def read_labels(uri: str, wanted: set[int] | None = None) -> dict[int, str]:
    """Read a `landmark_id,category` file into landmark id -> display name.

    The whole file is checked (it is small next to the metadata): any bad row raises
    `InputError`, before anything is written.

    Args:
        uri: Local path or gs:// URI.
        wanted: Keep only these landmark ids (all if None).
    """
    names: dict[int, str] = {}
    categories: dict[int, tuple[str, int]] = {}
    with _open_binary(uri) as binary:
        header, records = _records(binary, uri, LABEL_COLUMNS, None)
        id_at, category_at = header.index("landmark_id"), header.index("category")
        for line, record in records:
            if len(record) != len(header):
                raise InputError(
                    f"{len(record)} field(s), expected {len(header)}", file=uri, row=line
                )
            raw_id, category = record[id_at].strip(), record[category_at].strip()
            if not re.fullmatch(LANDMARK_ID_PATTERN, raw_id):
                raise InputError(
                    f"{raw_id!r} is not a non-negative integer",
                    file=uri,
                    row=line,
                    field="landmark_id",
                )
            landmark = int(raw_id)
            seen = categories.get(landmark)
            if seen is not None and seen[0] != category:
                raise InputError(
                    f"landmark {landmark} already has category {seen[0]!r} on row {seen[1]}",
                    file=uri,
                    row=line,
                    field="category",
                )
            categories[landmark] = (category, line)
            if wanted is None or landmark in wanted:
                names[landmark] = category_name(category) or str(landmark)
    if not categories:
        raise InputError("no data rows after the header", file=uri)
    return names
