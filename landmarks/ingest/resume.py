"""What a previous run left, and how this run finishes it.

Rows whose image is on disk with a known-good record, permanent failures and duplicates are
done; images on disk without a record (written just before a kill) are checked from disk
rather than fetched; transient failures are tried again. At the end the first row in file
order keeps each content and later ones become duplicates.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from landmarks import storage
from landmarks.ingest.manifest import (
    IMAGES_DIR,
    STATUS_DUPLICATE,
    STATUS_FAILED,
    STATUS_OK,
    Record,
    id_from_image_rel,
    reason_code,
)
from landmarks.ingest.metadata import Metadata
from landmarks.ingest.sources import is_transient
from landmarks.ingest.worker import Job


def existing_images(out: str) -> tuple[set[str], list[str]]:
    """Ids with an image file under `OUT/images`, and leftovers of killed local writes."""
    root = storage.join(out, IMAGES_DIR)
    found: set[str] = set()
    leftovers: list[str] = []
    for rel in storage.list_files(root):
        image_id = id_from_image_rel(rel)
        if image_id is not None:
            found.add(image_id)
        elif rel.endswith(".part"):
            leftovers.append(storage.join(root, rel))
    return found, leftovers


def frame_columns(frame: pd.DataFrame, *names: str) -> list[list[str]]:
    # Plain lists: iterating pandas string columns element by element is ~5x slower.
    return [frame[name].tolist() for name in names]


def plan_jobs(
    metadata: Metadata, known: dict[str, Record], on_disk: set[str]
) -> tuple[dict[str, Record], list[Job]]:
    """Split valid rows into records kept from earlier runs and jobs for this one."""
    done: dict[str, Record] = {}
    jobs: list[Job] = []
    rows = zip(*frame_columns(metadata.valid, "id", "url", "landmark_id"), strict=True)
    for order, (image_id, url, landmark_id) in enumerate(rows):
        prior = known.get(image_id)
        if prior is not None and prior.url == url:
            keep = (
                (prior.status == STATUS_OK and image_id in on_disk)
                or prior.status == STATUS_DUPLICATE
                or (prior.status == STATUS_FAILED and not is_transient(reason_code(prior.reason)))
            )
            if keep:
                # The label may have been corrected since; the image is the same.
                done[image_id] = replace(prior, landmark_id=landmark_id)
                continue
        # A file on disk counts only if nothing says it came from another url.
        trust_file = image_id in on_disk and (prior is None or prior.url == url)
        jobs.append(Job(order, image_id, url, landmark_id, from_disk=trust_file))
    return done, jobs


def resolve_duplicates(
    records: dict[str, Record], order: dict[str, int]
) -> tuple[dict[str, Record], list[str]]:
    """The first row in file order keeps each content; later ones become duplicates.

    Returns the final records and the ids whose files must be deleted.
    """
    keeper: dict[str, str] = {}
    for image_id, record in records.items():
        if record.status != STATUS_OK:
            continue
        current = keeper.get(record.sha256)
        if current is None or order[image_id] < order[current]:
            keeper[record.sha256] = image_id
    final: dict[str, Record] = {}
    demoted: list[str] = []
    for image_id, record in records.items():
        if record.status == STATUS_OK and keeper[record.sha256] != image_id:
            final[image_id] = record.with_status(
                STATUS_DUPLICATE, duplicate_of=keeper[record.sha256], path=""
            )
            demoted.append(image_id)
        elif record.status == STATUS_DUPLICATE:
            holder = keeper.get(record.sha256)
            if holder is None:
                # Its twin was lost (deleted, or failed on a retry): fetch it again next run.
                final[image_id] = record.with_status(
                    STATUS_FAILED,
                    reason="duplicate_lost: the image it duplicates is no longer kept",
                    duplicate_of="",
                    sha256="",
                    width=None,
                    height=None,
                )
            else:
                final[image_id] = record.with_status(STATUS_DUPLICATE, duplicate_of=holder)
        else:
            final[image_id] = record
    return final, demoted
