"""Writing: a planned split's class folders, manifest, label map and summary, local or remote.

Output directory SPLIT (local, gs://, s3:// or minio://):

- `train/<landmark_id>/<id>.jpg`, and the same under `validation/` and `test/`;
- `manifest.csv`: `id,landmark_id,class_index,split,sha256,path` (path relative to SPLIT);
- `label_map.csv`: `class_index,landmark_id,name`, class_index 0..K-1 in ascending
  landmark_id order, name empty where unknown;
- `summary.json`: per-split per-class counts, totals, the filters applied and what they
  dropped.

Re-running replaces the previous output. Locally the new split is built in a sibling
temporary directory and swapped in, so a failed run leaves the old output untouched. On an
object store the old manifest.csv is deleted first, the new objects written, objects of the
old split that are not part of the new one deleted, and the manifest written last: its
presence marks a complete split. An existing output that does not look like a split is
never touched.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from landmarks import storage
from landmarks.artifacts import LABEL_MAP, SPLIT_MANIFEST, SPLIT_SUMMARY
from landmarks.errors import LandmarksError
from landmarks.split.label_map import LABEL_MAP_COLUMNS
from landmarks.split.plan import MANIFEST_COLUMNS, SPLITS, Plan

# Names an existing output directory may hold for us to replace it.
OUTPUT_ENTRIES = frozenset({*SPLITS, SPLIT_MANIFEST, LABEL_MAP, SPLIT_SUMMARY})
# Enough to hide the latency of many small GCS requests without flooding the API.
COPY_WORKERS = 8


def write_split(
    ingest: str,
    out: str,
    plan: Plan,
    summary: dict,
    *,
    progress: bool = True,
    workers: int = COPY_WORKERS,
) -> None:
    """Copy the planned images from `ingest` and write the split's files, replacing `out`.

    Raises:
        LandmarksError: `out` exists and is not a split (nothing is touched then).
    """
    existing = check_replaceable(out)
    concurrent = storage.is_remote(ingest) or storage.is_remote(out)

    def jobs_for(root: str) -> list[tuple[str, str]]:
        return [
            (storage.join(ingest, plan.sources[r.id]), storage.join(root, r.path))
            for r in plan.rows
        ]

    if storage.is_remote(out):
        storage.delete(storage.join(out, SPLIT_MANIFEST))  # the old split is no longer complete
        copy_all(jobs_for(out), concurrent=True, progress=progress, workers=workers)
        new = {r.path for r in plan.rows} | {LABEL_MAP, SPLIT_SUMMARY, SPLIT_MANIFEST}
        stale = [rel for rel in existing if rel not in new]
        _parallel(lambda rel: storage.delete(storage.join(out, rel)), stale)
        write_outputs(out, plan, summary)
    else:

        def fill(tmp: str) -> None:
            copy_all(jobs_for(tmp), concurrent=concurrent, progress=progress, workers=workers)
            write_outputs(tmp, plan, summary)

        replace_local(out, fill)


def _csv_text(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def check_replaceable(out: str) -> list[str]:
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


def copy_all(
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


def write_outputs(root: str, plan: Plan, summary: dict) -> None:
    """label_map.csv and summary.json, then manifest.csv last: it marks a complete split."""
    storage.write_text(
        storage.join(root, LABEL_MAP),
        _csv_text(
            LABEL_MAP_COLUMNS, ((e.class_index, e.landmark_id, e.name) for e in plan.label_map)
        ),
        content_type="text/csv",
    )
    storage.write_text(
        storage.join(root, SPLIT_SUMMARY),
        json.dumps(summary, indent=2, sort_keys=False) + "\n",
        content_type="application/json",
    )
    storage.write_text(
        storage.join(root, SPLIT_MANIFEST),
        _csv_text(
            MANIFEST_COLUMNS,
            ((r.id, r.landmark_id, r.class_index, r.split, r.sha256, r.path) for r in plan.rows),
        ),
        content_type="text/csv",
    )


def replace_local(out: str, fill: Callable[[str], None]) -> None:
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
