"""Filter landmarks and split their images into train / validation / test class folders.

Input: an ingest output directory (local, gs://, s3:// or minio://) with `manifest.csv` (only
rows with status `ok` are used) and optionally `labels.csv` (`landmark_id,name`).

Output directory SPLIT (local, gs://, s3:// or minio://):

- `train/<landmark_id>/<id>.jpg`, and the same under `validation/` and `test/`;
- `manifest.csv`: `id,landmark_id,class_index,split,sha256,path` (path relative to SPLIT);
- `label_map.csv`: `class_index,landmark_id,name`, class_index 0..K-1 in ascending
  landmark_id order, name empty where unknown;
- `summary.json`: per-split per-class counts, totals, the filters applied and what they
  dropped.

Rules:

- A landmark's size is its number of *distinct* valid images (by sha256). Landmarks below
  `min_images` are dropped; then `top_k` keeps the largest (ties: lower landmark_id); then
  `max_per_class` keeps that many distinct images of each.
- The unit of splitting is a group of identical images (same sha256): all rows of a group
  go to the same split, so a picture never sits in train and test at once. A group shared
  by several landmarks is split with its home landmark (most rows, then lowest id).
- Per landmark with n groups: with n >= 3 every split gets at least one; with n == 2 train
  and validation get one each, with n == 1 train gets it. Beyond these minimums the counts
  follow the ratios by largest remainder (ties: train, validation, test).
- Which groups go where depends only on the seed and the group's sha256, never on row
  order, so the outputs are byte-identical across runs and a landmark's split does not
  change when other landmarks are added or dropped.
- Re-running replaces the previous output. Locally the new split is built in a sibling
  temporary directory and swapped in, so a failed run leaves the old output untouched. On
  an object store the old manifest.csv is deleted first, the new objects written, objects of
  the old split that are not part of the new one deleted, and the manifest written last: its
  presence marks a complete split. An existing output that does not look like a split is
  never touched.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from landmarks import storage
from landmarks.errors import InputError, LandmarksError
from landmarks.ingest.manifest import LABELS_NAME, MANIFEST_NAME, STATUS_OK
from landmarks.split.label_map import LABEL_MAP, LABEL_MAP_COLUMNS, LabelEntry

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.csv"
SUMMARY = "summary.json"
MANIFEST_COLUMNS = ("id", "landmark_id", "class_index", "split", "sha256", "path")
INGEST_COLUMNS = ("id", "landmark_id", "status", "sha256", "path")
# Names an existing output directory may hold for us to replace it.
OUTPUT_ENTRIES = frozenset({*SPLITS, MANIFEST, LABEL_MAP, SUMMARY})
# Enough to hide the latency of many small GCS requests without flooding the API.
COPY_WORKERS = 8

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_LANDMARK_ID = re.compile(r"^[0-9]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class SplitOptions:
    """What to split and how.

    Attributes:
        ingest_dir: Ingest output directory, local path or gs://, s3://, minio:// URI.
        out: Output directory, local path or gs://, s3://, minio:// URI; replaced if it holds
            a split.
        min_images: Keep landmarks with at least this many distinct valid images.
        top_k: Then keep only the K landmarks with most images (None: all).
        max_per_class: Then keep at most this many distinct images per landmark (None: all).
        ratios: Shares of train, validation and test; each above 0, summing to 1.
        seed: Decides which images go to which split (and which survive the cap).
        progress: Show a progress bar while copying images.
        workers: Concurrent copies when the source or the output is in an object store.
    """

    ingest_dir: str
    out: str
    min_images: int = 3
    top_k: int | None = None
    max_per_class: int | None = None
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    progress: bool = True
    workers: int = COPY_WORKERS


@dataclass(frozen=True)
class SplitRow:
    """One row of the split's manifest.csv."""

    id: str
    landmark_id: int
    class_index: int
    split: str
    sha256: str
    path: str


@dataclass
class SplitResult:
    """What `run_split` wrote."""

    out: str
    label_map: list[LabelEntry]
    rows: list[SplitRow]
    # split -> landmark_id -> number of images
    counts: dict[str, dict[int, int]]
    summary: dict = field(repr=False)

    @property
    def totals(self) -> dict[str, int]:
        return dict(self.summary["totals"])

    @property
    def stats(self) -> dict[str, int]:
        """Flat numbers for a metrics panel (KFP Metrics, logs)."""
        dropped = self.summary["dropped"]
        return {
            "classes": len(self.label_map),
            **{f"{name}_images": self.totals[name] for name in SPLITS},
            "input_images": self.summary["input"]["ok_rows"],
            "dropped_classes": dropped["classes_below_min_images"]
            + dropped["classes_beyond_top_k"],
            "capped_images": dropped["images_beyond_max_per_class"],
        }

    def format_counts(self) -> str:
        """A table of images per class and split, for the command line."""
        names = {e.landmark_id: e.name for e in self.label_map}
        width = max(len("landmark_id"), *(len(str(e.landmark_id)) for e in self.label_map))
        head = f"{'class':>5}  {'landmark_id':>{width}}  " + "".join(f"{s:>11}" for s in SPLITS)
        lines = [head + "  name"]
        for entry in self.label_map:
            cells = "".join(f"{self.counts[s].get(entry.landmark_id, 0):>11}" for s in SPLITS)
            lines.append(
                f"{entry.class_index:>5}  {entry.landmark_id:>{width}}  {cells}  "
                f"{names[entry.landmark_id]}".rstrip()
            )
        total = "".join(f"{self.totals[s]:>11}" for s in SPLITS)
        lines.append(f"{'total':>5}  {'':>{width}}  {total}")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Image:
    id: str
    landmark_id: int
    sha256: str
    src: str  # path relative to the ingest directory
    row: int  # line in the ingest manifest, for error messages


# --------------------------------------------------------------------------- reading


def read_ingest_manifest(ingest_dir: str) -> tuple[list[_Image], int]:
    """Rows with status ok, validated; and the number of data rows in the file."""
    uri = storage.join(ingest_dir, MANIFEST_NAME)
    if not storage.exists(uri):
        raise InputError("not found: is this an ingest output directory?", file=uri)
    # utf-8-sig: a manifest saved from a spreadsheet starts with a byte-order mark.
    reader = csv.DictReader(io.StringIO(storage.read_text(uri, "utf-8-sig"), newline=""))
    missing = [c for c in INGEST_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=uri, row=1)
    images: list[_Image] = []
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
        images.append(_Image(image_id, int(landmark), digest, rel, line))
    return images, total


def read_labels(ingest_dir: str) -> dict[int, str]:
    """`labels.csv` of an ingest output as {landmark_id: name}; empty if the file is absent."""
    uri = storage.join(ingest_dir, LABELS_NAME)
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
    uri = storage.join(split_dir, MANIFEST)
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


# --------------------------------------------------------------------------- planning


def _order_key(seed: int, key: str) -> str:
    """A seeded pseudo-random rank that depends on nothing but the seed and the key."""
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def allocate(n: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """How many of a landmark's `n` image groups go to train, validation and test.

    With n >= 3 each split gets at least one; with n == 2 train and validation one each;
    n == 1 goes to train. The rest follows the ratios by largest remainder, ties broken in
    the order train, validation, test.
    """
    if n <= 0:
        return (0, 0, 0)
    minimum = [1, 1, 1] if n >= 3 else [1, 1, 0] if n == 2 else [1, 0, 0]
    ideal = [r * n for r in ratios]
    counts = [max(m, math.floor(x)) for m, x in zip(minimum, ideal, strict=True)]
    while sum(counts) > n:  # the minimums overshot: take from the most over-served split
        i = max(
            (i for i in range(3) if counts[i] > minimum[i]),
            key=lambda i: (counts[i] - ideal[i], -i),
        )
        counts[i] -= 1
    while sum(counts) < n:
        i = max(range(3), key=lambda i: (ideal[i] - counts[i], -i))
        counts[i] += 1
    return counts[0], counts[1], counts[2]


def _validate(opts: SplitOptions) -> tuple[float, float, float]:
    ratios = tuple(float(r) for r in opts.ratios)
    if len(ratios) != 3:
        raise LandmarksError(f"ratios: expected 3 values (train, validation, test), got {ratios}")
    if any(not math.isfinite(r) or r <= 0 for r in ratios):
        raise LandmarksError(f"ratios: each must be above 0, got {ratios}")
    if not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise LandmarksError(f"ratios must sum to 1, got {ratios} (sum {sum(ratios):g})")
    if opts.min_images < 1:
        raise LandmarksError(f"min_images must be at least 1, got {opts.min_images}")
    if opts.top_k is not None and opts.top_k < 2:
        raise LandmarksError(
            f"top_k must be at least 2 (a classifier needs two classes), got {opts.top_k}"
        )
    if opts.workers < 1:
        raise LandmarksError(f"workers must be at least 1, got {opts.workers}")
    if opts.max_per_class is not None and opts.max_per_class < 1:
        raise LandmarksError(f"max_per_class must be at least 1, got {opts.max_per_class}")
    return ratios[0], ratios[1], ratios[2]


@dataclass
class _Plan:
    rows: list[SplitRow]
    sources: dict[str, str]  # id -> path relative to the ingest directory
    label_map: list[LabelEntry]
    dropped: dict[str, int]
    classes_in_input: int


def plan_split(
    images: list[_Image], names: dict[int, str], opts: SplitOptions, ratios: Sequence[float]
) -> _Plan:
    """Decide, without touching any file, which image goes to which split."""
    distinct: dict[int, set[str]] = defaultdict(set)
    for image in images:
        distinct[image.landmark_id].add(image.sha256)
    sizes = {landmark: len(hashes) for landmark, hashes in distinct.items()}

    kept = sorted(lm for lm, n in sizes.items() if n >= opts.min_images)
    below = len(sizes) - len(kept)
    beyond_k = 0
    if opts.top_k is not None and len(kept) > opts.top_k:
        ranked = sorted(kept, key=lambda lm: (-sizes[lm], lm))
        beyond_k = len(kept) - opts.top_k
        kept = sorted(ranked[: opts.top_k])
    if len(kept) < 2:
        largest = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        hint = ", ".join(f"{lm}: {n}" for lm, n in largest) or "none"
        raise LandmarksError(
            f"the filters leave {len(kept)} landmark(s), a classifier needs at least 2 "
            f"(min_images={opts.min_images}, top_k={opts.top_k}; {len(sizes)} landmark(s) "
            f"with valid images, largest distinct-image counts {hint})"
        )

    # The cap keeps the distinct images ranked first by the seeded order.
    capped = 0
    keep_hashes: dict[int, set[str]] = {}
    for landmark in kept:
        hashes = sorted(distinct[landmark], key=lambda h: _order_key(opts.seed, h))
        if opts.max_per_class is not None and len(hashes) > opts.max_per_class:
            capped += len(hashes) - opts.max_per_class
            hashes = hashes[: opts.max_per_class]
        keep_hashes[landmark] = set(hashes)
    selected = [i for i in images if i.sha256 in keep_hashes.get(i.landmark_id, ())]

    # Groups of identical images; each is split with its home landmark.
    members: dict[str, list[_Image]] = defaultdict(list)
    for image in selected:
        members[image.sha256].append(image)
    homes: dict[int, list[str]] = defaultdict(list)
    for digest, group in members.items():
        votes = Counter(i.landmark_id for i in group)
        home = min(votes, key=lambda lm: (-votes[lm], lm))
        homes[home].append(digest)

    split_of: dict[str, str] = {}
    for landmark in kept:
        groups = sorted(homes.get(landmark, []), key=lambda h: _order_key(opts.seed, h))
        n_train, n_val, _ = allocate(len(groups), ratios)
        for rank, digest in enumerate(groups):
            split_of[digest] = (
                "train" if rank < n_train else "validation" if rank < n_train + n_val else "test"
            )

    class_index = {landmark: i for i, landmark in enumerate(kept)}
    label_map = [LabelEntry(i, lm, names.get(lm, "")) for lm, i in class_index.items()]
    order = {name: i for i, name in enumerate(SPLITS)}
    rows = sorted(
        (
            SplitRow(
                id=i.id,
                landmark_id=i.landmark_id,
                class_index=class_index[i.landmark_id],
                split=split_of[i.sha256],
                sha256=i.sha256,
                path=f"{split_of[i.sha256]}/{i.landmark_id}/{i.id}.jpg",
            )
            for i in selected
        ),
        key=lambda r: (order[r.split], r.class_index, r.id),
    )
    for name in SPLITS:
        if not any(r.split == name for r in rows):
            hint = "; use --min-images 3 or more" if opts.min_images < 3 else ""
            raise LandmarksError(
                f"split '{name}' would be empty: that needs a kept landmark with at least 3 "
                f"distinct images (min_images={opts.min_images}{hint})"
            )
    return _Plan(
        rows=rows,
        sources={i.id: i.src for i in selected},
        label_map=label_map,
        dropped={
            "classes_below_min_images": below,
            "classes_beyond_top_k": beyond_k,
            "images_beyond_max_per_class": capped,
        },
        classes_in_input=len(sizes),
    )


# --------------------------------------------------------------------------- writing


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _check_replaceable(out: str) -> list[str]:
    """Files already under `out`, after checking they belong to a split we may replace."""
    if not storage.is_remote(out) and Path(out).exists() and not Path(out).is_dir():
        raise LandmarksError(f"{out} exists and is not a directory")
    existing = list(storage.list_files(out))
    foreign = sorted({rel.split("/")[0] for rel in existing} - OUTPUT_ENTRIES)
    if foreign:
        raise LandmarksError(
            f"{out} holds {', '.join(foreign[:5])}, which a split does not write: refusing to "
            "replace it; choose a new or empty output directory"
        )
    return existing


def _check_sources(ingest: str, images: list[_Image], manifest_uri: str) -> None:
    """Fail before touching the output if the manifest names an image that is not there."""
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


def _copy_one(src: str, dst: str, hardlink: bool) -> None:
    if hardlink:
        # Local to local: a hard link costs no space or time; ingest replaces files
        # atomically (new inode), so a later ingest run cannot change the split's copy.
        try:
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
            return
        except OSError:
            pass  # another filesystem, or links not allowed: copy the bytes
    # Server-side within one store (keeping the content type), else through this process.
    storage.copy(src, dst, content_type="image/jpeg")


def _copy_all(
    jobs: list[tuple[str, str]], *, concurrent: bool, progress: bool, workers: int = COPY_WORKERS
) -> None:
    """Copy (src, dst) pairs; with a small thread pool when either side is an object store."""
    bar = tqdm(total=len(jobs), desc="split: copying images", unit="img", disable=not progress)
    with bar:
        if not concurrent:
            for src, dst in jobs:
                _copy_one(src, dst, hardlink=True)
                bar.update()
            return
        with ThreadPoolExecutor(workers, thread_name_prefix="split-copy") as pool:
            futures = [pool.submit(_copy_one, src, dst, False) for src, dst in jobs]
            for future in futures:
                future.add_done_callback(lambda _: bar.update())
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()  # fail fast: the first error stops the queued copies
        for future in futures:
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]


def _write_outputs(root: str, plan: _Plan, summary: dict) -> None:
    """label_map.csv and summary.json, then manifest.csv last: it marks a complete split."""
    storage.write_text(
        storage.join(root, LABEL_MAP),
        _csv_text(
            LABEL_MAP_COLUMNS, ((e.class_index, e.landmark_id, e.name) for e in plan.label_map)
        ),
        content_type="text/csv",
    )
    storage.write_text(
        storage.join(root, SUMMARY),
        json.dumps(summary, indent=2, sort_keys=False) + "\n",
        content_type="application/json",
    )
    storage.write_text(
        storage.join(root, MANIFEST),
        _csv_text(
            MANIFEST_COLUMNS,
            ((r.id, r.landmark_id, r.class_index, r.split, r.sha256, r.path) for r in plan.rows),
        ),
        content_type="text/csv",
    )


def _summary(
    plan: _Plan, opts: SplitOptions, ratios: Sequence[float], total_rows: int, ok_rows: int
) -> dict:
    counts = {name: Counter() for name in SPLITS}
    for row in plan.rows:
        counts[row.split][row.landmark_id] += 1
    per_split = {
        name: {str(e.landmark_id): counts[name][e.landmark_id] for e in plan.label_map}
        for name in SPLITS
    }
    totals = {name: sum(counts[name].values()) for name in SPLITS}
    totals["all"] = sum(totals.values())
    return {
        "classes": len(plan.label_map),
        "splits": per_split,
        "totals": totals,
        "filters": {
            "min_images": opts.min_images,
            "top_k": opts.top_k,
            "max_per_class": opts.max_per_class,
            "ratios": list(ratios),
            "seed": opts.seed,
        },
        "input": {
            "ingest_dir": opts.ingest_dir,
            "rows": total_rows,
            "ok_rows": ok_rows,
            "classes": plan.classes_in_input,
        },
        "dropped": plan.dropped,
    }


def run_split(opts: SplitOptions) -> SplitResult:
    """Filter, split and copy an ingest output into class folders; see the module docstring.

    Raises:
        InputError: A malformed ingest manifest or labels file, or an image it names that
            is missing (file, row and field named).
        LandmarksError: Bad options, filters that leave fewer than two landmarks or an
            empty split, or an output directory that is not a split.
    """
    ratios = _validate(opts)
    ingest = opts.ingest_dir.rstrip("/") if storage.is_remote(opts.ingest_dir) else opts.ingest_dir
    out = opts.out.rstrip("/") if storage.is_remote(opts.out) else opts.out
    if _same_or_inside(out, ingest):
        raise LandmarksError(f"output {out} must not be the ingest directory or inside it")

    images, total_rows = read_ingest_manifest(ingest)
    names = read_labels(ingest)
    plan = plan_split(images, names, opts, ratios)
    summary = _summary(plan, opts, ratios, total_rows, len(images))
    log.info(
        "split %d images of %d landmarks: %s",
        summary["totals"]["all"],
        len(plan.label_map),
        ", ".join(f"{s} {summary['totals'][s]}" for s in SPLITS),
    )

    manifest_uri = storage.join(ingest, MANIFEST_NAME)
    _check_sources(ingest, images, manifest_uri)
    existing = _check_replaceable(out)
    concurrent = storage.is_remote(ingest) or storage.is_remote(out)

    def jobs_for(root: str) -> list[tuple[str, str]]:
        return [
            (storage.join(ingest, plan.sources[r.id]), storage.join(root, r.path))
            for r in plan.rows
        ]

    if storage.is_remote(out):
        storage.delete(storage.join(out, MANIFEST))  # the old split is no longer complete
        _copy_all(jobs_for(out), concurrent=True, progress=opts.progress, workers=opts.workers)
        new = {r.path for r in plan.rows} | {LABEL_MAP, SUMMARY, MANIFEST}
        stale = [rel for rel in existing if rel not in new]
        _parallel(lambda rel: storage.delete(storage.join(out, rel)), stale)
        _write_outputs(out, plan, summary)
    else:

        def fill(tmp: str) -> None:
            _copy_all(
                jobs_for(tmp), concurrent=concurrent, progress=opts.progress, workers=opts.workers
            )
            _write_outputs(tmp, plan, summary)

        _replace_local(out, fill)

    counts = {name: {int(k): v for k, v in summary["splits"][name].items()} for name in SPLITS}
    return SplitResult(
        out=out, label_map=plan.label_map, rows=plan.rows, counts=counts, summary=summary
    )


def _replace_local(out: str, fill: Callable[[str], None]) -> None:
    """Build the new output in a sibling directory, then swap it in for the old one."""
    target = Path(out).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new-"))
    try:
        fill(str(tmp))
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.replace(target, old / "split")
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old / "split", target)  # put the previous split back
                old.rmdir()
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _parallel(fn: Callable[[str], None], items: list[str]) -> None:
    if not items:
        return
    with ThreadPoolExecutor(COPY_WORKERS, thread_name_prefix="split-delete") as pool:
        list(pool.map(fn, items))


def _same_or_inside(out: str, ingest: str) -> bool:
    if storage.is_remote(out) != storage.is_remote(ingest):
        return False
    if storage.is_remote(out):
        return out == ingest or out.startswith(ingest + "/")
    a, b = Path(out).absolute(), Path(ingest).absolute()
    return a == b or b in a.parents
