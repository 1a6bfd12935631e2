"""One row of the ingest: fetch, check and write its image, on a bounded thread pool.

`run_ingest` plans the rows (`landmarks.ingest.resume`) and hands them to `iter_results`,
which keeps a bounded number in flight and yields each row's record as it finishes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import NamedTuple

from landmarks import storage
from landmarks.errors import LandmarksError
from landmarks.ingest.fetch import Retrier
from landmarks.ingest.images import CheckedImage, ImageRejected, check_image
from landmarks.ingest.manifest import (
    STATUS_DUPLICATE,
    STATUS_FAILED,
    STATUS_OK,
    Record,
    image_rel_path,
)
from landmarks.ingest.sources import FetchError, HttpSource, ImagesDirSource, fetch_gcs

log = logging.getLogger(__name__)


class Job(NamedTuple):  # a tuple: millions are built when planning a GLDv2-sized run
    order: int
    id: str
    url: str
    landmark_id: str
    from_disk: bool  # an image file without a record: check it instead of fetching


class SeenContent:
    """sha256 -> earliest row (file order) holding that content, shared by the workers.

    A worker skips writing an image whose content an earlier row already holds; a later
    row holding it is written and demoted when the run finishes, so the outcome does not
    depend on which thread finished first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: dict[str, int] = {}

    def claim(self, sha256: str, order: int) -> bool:
        """True if `order` is the earliest row seen with this content so far."""
        with self._lock:
            first = self._first.get(sha256)
            if first is not None and first < order:
                return False
            self._first[sha256] = order
            return True


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs of the run's options (`IngestOptions` holds the defaults)."""

    out: str
    min_size: int
    max_pixels: int
    timeout: float
    user_agent: str
    max_bytes: int
    images_dir: str | None


class ImageWorker:
    """Fetches, checks and writes one row's image; called from the pool's threads."""

    def __init__(
        self, opts: WorkerSettings, retrier: Retrier, seen: SeenContent, wanted: list[str]
    ):
        self.opts = opts
        self.retrier = retrier
        self.seen = seen
        self.http = HttpSource(
            timeout=opts.timeout, user_agent=opts.user_agent, max_bytes=opts.max_bytes
        )
        self.images_dir = ImagesDirSource(opts.images_dir, wanted) if opts.images_dir else None

    def close(self) -> None:
        self.http.close()

    def _fetch(self, job: Job) -> bytes:
        if self.images_dir is not None:
            return self.images_dir.fetch(job.id)
        if job.url.startswith("gs://"):
            return self.retrier.call(fetch_gcs, job.url)
        return self.retrier.call(self.http.fetch, job.url)

    def _claim(self, base: Record, checked: CheckedImage, rel: str, order: int) -> Record:
        """`ok` at `rel`, or `duplicate` when an earlier row already holds this content."""
        if not self.seen.claim(checked.sha256, order):
            return base.with_status(
                STATUS_DUPLICATE, sha256=checked.sha256, width=checked.width, height=checked.height
            )
        return base.with_status(
            STATUS_OK, sha256=checked.sha256, width=checked.width, height=checked.height, path=rel
        )

    def __call__(self, job: Job) -> Record:
        base = Record(id=job.id, url=job.url, landmark_id=job.landmark_id, status=STATUS_FAILED)
        rel = image_rel_path(job.id)
        target = storage.join(self.opts.out, rel)
        if job.from_disk:
            try:
                data = storage.read_bytes(target)
                checked = check_image(
                    data, min_size=self.opts.min_size, max_pixels=self.opts.max_pixels
                )
                if checked.converted:
                    raise ImageRejected("not_stored_form", "not a file this stage writes")
            except Exception as err:  # any doubt about the file means fetching it again
                log.info("refetching %s: the file on disk is unusable (%s)", job.id, err)
                storage.delete(target)
            else:
                # A duplicate's file goes when the run finishes (rows not kept lose their files).
                return self._claim(base, checked, rel, job.order)
        try:
            data = self._fetch(job)
            checked = check_image(
                data, min_size=self.opts.min_size, max_pixels=self.opts.max_pixels
            )
        except (FetchError, ImageRejected) as err:
            return base.with_status(STATUS_FAILED, reason=f"{err.code}: {err.detail}")
        record = self._claim(base, checked, rel, job.order)
        if record.status == STATUS_DUPLICATE:
            return record
        try:
            storage.write_bytes(target, checked.data, content_type="image/jpeg")
        except Exception as err:
            # The output is unusable (disk full, no permission): stop the run, not the row.
            raise LandmarksError(f"cannot write {target}: {err}") from err
        return record


def iter_results(
    worker: ImageWorker, jobs: list[Job], workers: int, stop: threading.Event
) -> Iterator[Record]:
    """Run jobs on a pool with a bounded number in flight; yield records as they finish."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
    pending: set[Future[Record]] = set()
    try:
        queue = iter(jobs)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < 2 * workers:
                job = next(queue, None)
                if job is None:
                    exhausted = True
                else:
                    pending.add(pool.submit(worker, job))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
    finally:
        stop.set()  # waiting retries give up; images in flight finish or are dropped
        pool.shutdown(wait=True, cancel_futures=True)
