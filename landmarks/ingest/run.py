"""The ingest stage: metadata in, validated and deduplicated images plus a manifest out.

Order of work, chosen so that a bad input or an interruption costs nothing:

1. Read and validate the metadata and the label file. A file-level problem raises
   `InputError` here, before anything is written.
2. Plan: read what a previous run left (manifest, journal segments, image files). Rows
   whose image is on disk with a known-good record, permanent failures and duplicates
   are done. Images on disk without a record (written just before a kill) are checked
   from disk rather than fetched. Transient failures are tried again.
3. Fetch, check and write images with a bounded thread pool; every result goes to the
   journal, flushed every few seconds.
4. Finish: resolve duplicates (the first row in file order keeps the image), write the
   manifest, summary and labels atomically, then drop the journal.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from landmarks import storage
from landmarks.artifacts import INGEST_LABELS, INGEST_MANIFEST, INGEST_SUMMARY
from landmarks.config import USER_AGENT
from landmarks.errors import InputError
from landmarks.ingest.fetch import Retrier
from landmarks.ingest.images import MAX_PIXELS
from landmarks.ingest.manifest import (
    STATUS_FAILED,
    STATUS_OK,
    STATUSES,
    Journal,
    Record,
    image_rel_path,
    reason_code,
    records_to_csv,
)
from landmarks.ingest.metadata import Metadata, read_labels, read_metadata
from landmarks.ingest.resume import existing_images, frame_columns, plan_jobs, resolve_duplicates
from landmarks.ingest.worker import ImageWorker, SeenContent, WorkerSettings, iter_results

log = logging.getLogger(__name__)


@dataclass
class IngestOptions:
    """What to ingest and how.

    Attributes:
        metadata: `id,url,landmark_id` CSV, local path or gs:// URI.
        out: Output directory, local path or gs:// URI (layout in `landmarks.ingest.manifest`).
        labels: Optional `landmark_id,category` CSV; gives `OUT/labels.csv`.
        images_dir: Directory of GLDv2 tar shards and/or `a/b/c/<id>.jpg` files; when set,
            images are looked up there instead of downloaded, and urls are not checked.
        workers: Images in flight at once.
        timeout: Seconds one request may take (connect, each read, and the whole body).
        retries: Extra attempts after a transient failure (timeout, 429, 5xx, ...).
        backoff: First retry wait in seconds, doubled per attempt, with jitter.
        max_retry_wait: Cap on one wait, a server's Retry-After included.
        user_agent: Sent with every request; hosts such as Wikimedia block anonymous ones.
        min_size: Smallest accepted width and height in pixels.
        max_pixels: Largest accepted width x height, read from the header before decoding
            (`landmarks.ingest.images.MAX_PIXELS` explains the default). Pillow's own
            decompression-bomb check still refuses anything above 2 x its
            `MAX_IMAGE_PIXELS` (179 MP by default), with the same `too_large` reason.
        max_bytes: Largest accepted download.
        limit: Only the first N data rows of the metadata.
        progress: Show a progress bar.
        flush_seconds: How often progress is persisted for a resume.
    """

    metadata: str
    out: str
    labels: str | None = None
    images_dir: str | None = None
    workers: int = 32
    timeout: float = 30.0
    retries: int = 4
    backoff: float = 1.0
    max_retry_wait: float = 60.0
    user_agent: str = USER_AGENT
    min_size: int = 32
    max_pixels: int = MAX_PIXELS
    max_bytes: int = 50 * 1024 * 1024
    limit: int | None = None
    progress: bool = True
    flush_seconds: float = 5.0

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> InputError:
            return InputError(f"must be {rule}, got {getattr(self, name)!r}", field=name)

        for name, low in (("workers", 1), ("min_size", 1), ("max_pixels", 1), ("max_bytes", 1)):
            if getattr(self, name) < low:
                raise bad(name, f"at least {low}")
        if self.limit is not None and self.limit < 1:
            raise bad("limit", "at least 1")
        if self.retries < 0:
            raise bad("retries", "0 or more")
        for name in ("timeout", "max_retry_wait", "flush_seconds"):
            if getattr(self, name) <= 0:
                raise bad(name, "positive")
        if self.backoff < 0:
            raise bad("backoff", "0 or more")


@dataclass
class IngestResult:
    """What a run produced.

    Attributes:
        out: The output directory.
        manifest: URI of `manifest.csv`.
        summary: The content of `summary.json`.
        counts: `rows` and the count per status (`ok`, `failed`, `duplicate`).
        labels: URI of `labels.csv`, or None without a label file.
    """

    out: str
    manifest: str
    summary: dict
    counts: dict[str, int] = field(default_factory=dict)
    labels: str | None = None


def run_ingest(opts: IngestOptions) -> IngestResult:
    """Ingest every row of `opts.metadata` into `opts.out`; see the module docstring."""
    started = time.monotonic()
    metadata = read_metadata(opts.metadata, limit=opts.limit, check_urls=opts.images_dir is None)
    valid = metadata.valid
    labels = None
    if opts.labels:
        labels = read_labels(opts.labels, {int(v) for v in valid["landmark_id"].unique()})

    known = Journal.load(opts.out)
    on_disk, leftovers = existing_images(opts.out)
    done, jobs = plan_jobs(metadata, known, on_disk)
    log.info(
        "%s: %d rows, %d valid, %d done by earlier runs, %d to fetch, %d to check on disk",
        opts.metadata,
        len(metadata.rows),
        len(valid),
        len(done),
        sum(not j.from_disk for j in jobs),
        sum(j.from_disk for j in jobs),
    )

    seen = SeenContent()
    order = {image_id: i for i, image_id in enumerate(valid["id"].tolist())}
    for record in done.values():
        if record.status == STATUS_OK:
            seen.claim(record.sha256, order[record.id])

    stop = threading.Event()
    retrier = Retrier(
        retries=opts.retries, backoff=opts.backoff, max_wait=opts.max_retry_wait, stop=stop
    )
    # Indexing images_dir may raise InputError: it comes before the first write.
    settings = WorkerSettings(
        out=opts.out,
        min_size=opts.min_size,
        max_pixels=opts.max_pixels,
        timeout=opts.timeout,
        user_agent=opts.user_agent,
        max_bytes=opts.max_bytes,
        images_dir=opts.images_dir,
    )
    worker = ImageWorker(settings, retrier, seen, [j.id for j in jobs])
    for leftover in leftovers:
        storage.delete(leftover)
    journal = Journal(opts.out, flush_seconds=opts.flush_seconds)
    results: dict[str, Record] = dict(done)
    tally: Counter[str] = Counter()
    fetch_started = time.monotonic()
    bar = tqdm(
        total=len(jobs),
        unit="img",
        desc="ingest",
        disable=not opts.progress,
        file=sys.stderr,
        mininterval=0.5 if sys.stderr.isatty() else 10.0,
        dynamic_ncols=True,
    )
    finished = iter_results(worker, jobs, opts.workers, stop)
    try:
        for record in finished:
            results[record.id] = record
            journal.add(record)
            tally[record.status] += 1
            bar.update(1)
            if bar.n % 50 == 0 or bar.n == len(jobs):
                bar.set_postfix(tally, refresh=False)
    except KeyboardInterrupt:
        log.warning("interrupted: progress is saved; rerun the same command to resume")
        raise
    finally:
        finished.close()  # stops the pool now, not when the traceback is collected
        bar.close()
        worker.close()
        journal.flush()  # whatever happened, keep what finished
    fetch_seconds = time.monotonic() - fetch_started

    records, demoted = resolve_duplicates(results, order)
    manifest = _manifest_records(metadata, records)
    manifest_uri = storage.join(opts.out, INGEST_MANIFEST)
    storage.write_text(manifest_uri, records_to_csv(manifest), content_type="text/csv")
    labels_uri = None
    if labels is not None:
        labels_uri = storage.join(opts.out, INGEST_LABELS)
        lines = ["landmark_id,name"] + [
            _csv_line(str(k), v) for k, v in sorted(labels.items(), key=lambda kv: kv[0])
        ]
        storage.write_text(labels_uri, "\n".join(lines) + "\n", content_type="text/csv")
    # Files of rows that are not kept: demoted duplicates, and leftovers from earlier runs.
    for image_id in set(demoted) | {
        i for i in on_disk if i in records and records[i].status != STATUS_OK
    }:
        storage.delete(storage.join(opts.out, image_rel_path(image_id)))
    checked = sum(j.from_disk for j in jobs)
    summary = _summary(opts, metadata, manifest, len(jobs), checked, fetch_seconds, started, labels)
    storage.write_text(
        storage.join(opts.out, INGEST_SUMMARY),
        json.dumps(summary, indent=2, sort_keys=True) + "\n",
        content_type="application/json",
    )
    Journal.clear(opts.out)
    counts = {"rows": summary["rows"], **summary["status"]}
    log.info("ingest done: %s", counts)
    return IngestResult(
        out=opts.out, manifest=manifest_uri, summary=summary, counts=counts, labels=labels_uri
    )


def _csv_line(*values: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(values)
    return buf.getvalue()


def _manifest_records(metadata: Metadata, records: dict[str, Record]) -> list[Record]:
    out = []
    for image_id, url, landmark_id, error in zip(
        *frame_columns(metadata.rows, "id", "url", "landmark_id", "error"), strict=True
    ):
        if error:
            out.append(Record(image_id, url, landmark_id, STATUS_FAILED, reason=error))
        else:
            out.append(records[image_id])
    return out


def _summary(
    opts: IngestOptions,
    metadata: Metadata,
    manifest: list[Record],
    processed: int,
    checked_on_disk: int,
    fetch_seconds: float,
    started: float,
    labels: dict[int, str] | None,
) -> dict:
    status = Counter(r.status for r in manifest)
    reasons = Counter(reason_code(r.reason) for r in manifest if r.status == STATUS_FAILED)
    elapsed = time.monotonic() - started
    return {
        "metadata": opts.metadata,
        "out": opts.out,
        "rows": len(manifest),
        "collapsed_repeats": metadata.collapsed,
        "status": {s: status.get(s, 0) for s in STATUSES},
        "reasons": dict(sorted(reasons.items())),
        "this_run": {
            "processed": processed,
            "fetched": processed - checked_on_disk,
            "checked_on_disk": checked_on_disk,
            "reused": len(manifest) - len(metadata.invalid) - processed,
            "fetch_seconds": round(fetch_seconds, 3),
            "images_per_second": round(processed / fetch_seconds, 2) if fetch_seconds else 0.0,
        },
        "elapsed_seconds": round(elapsed, 3),
        "images_per_second": round(processed / elapsed, 2) if elapsed else 0.0,
        "labels": None if labels is None else len(labels),
        "options": {
            "workers": opts.workers,
            "timeout": opts.timeout,
            "retries": opts.retries,
            "min_size": opts.min_size,
            "max_pixels": opts.max_pixels,
            "limit": opts.limit,
            "images_dir": opts.images_dir,
        },
    }
