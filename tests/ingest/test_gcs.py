"""gs:// metadata, images and output against a real gcp-storage-emulator."""

from __future__ import annotations

import csv
import io
import json

import pytest

from landmarks import storage
from landmarks.artifacts import INGEST_LABELS, INGEST_MANIFEST, INGEST_SUMMARY
from landmarks.errors import InputError
from landmarks.ingest import IngestOptions, run_ingest


def _manifest(out: str) -> dict[str, dict]:
    text = storage.read_text(storage.join(out, INGEST_MANIFEST))
    return {r["id"]: r for r in csv.DictReader(io.StringIO(text))}


def test_gs_metadata_images_and_output(gcs_bucket: str, jpeg) -> None:
    storage.write_bytes(f"{gcs_bucket}/src/one.jpg", jpeg(1))
    storage.write_bytes(f"{gcs_bucket}/src/two.jpg", jpeg(2))
    storage.write_text(
        f"{gcs_bucket}/meta/train.csv",
        "id,url,landmark_id\n"
        f"gsimg1,{gcs_bucket}/src/one.jpg,1\n"
        f"gsimg2,{gcs_bucket}/src/two.jpg,2\n"
        f"gsimg3,{gcs_bucket}/src/absent.jpg,2\n",
    )
    storage.write_text(
        f"{gcs_bucket}/meta/labels.csv", "landmark_id,category\n1,http://c/Category:A_b\n"
    )
    out = f"{gcs_bucket}/ingest"
    options = IngestOptions(
        f"{gcs_bucket}/meta/train.csv",
        out,
        labels=f"{gcs_bucket}/meta/labels.csv",
        min_size=32,
        progress=False,
        backoff=0.01,
    )
    result = run_ingest(options)
    manifest = _manifest(out)
    assert manifest["gsimg1"]["status"] == "ok"
    assert storage.read_bytes(f"{out}/images/g/s/i/gsimg2.jpg") == jpeg(2)
    assert manifest["gsimg3"]["reason"].startswith("gcs_not_found")
    assert storage.read_text(f"{out}/{INGEST_LABELS}") == "landmark_id,name\n1,A b\n"
    summary = json.loads(storage.read_text(f"{out}/{INGEST_SUMMARY}"))
    assert summary["status"] == result.summary["status"] == {"ok": 2, "failed": 1, "duplicate": 0}
    assert sorted(storage.list_files(out)) == [
        "images/g/s/i/gsimg1.jpg",
        "images/g/s/i/gsimg2.jpg",
        INGEST_LABELS,
        INGEST_MANIFEST,
        INGEST_SUMMARY,
    ]

    storage.delete(f"{out}/{INGEST_MANIFEST}")  # resume from the files alone
    again = run_ingest(options)
    # Kept images are checked where they are; only the missing object is tried again.
    assert again.summary["this_run"]["checked_on_disk"] == 2
    assert again.summary["this_run"]["fetched"] == 1
    assert _manifest(out)["gsimg1"]["status"] == "ok"


def test_missing_gs_metadata_is_an_input_error(gcs_bucket: str, tmp_path) -> None:
    with pytest.raises(InputError, match="cannot read") as info:
        run_ingest(IngestOptions(f"{gcs_bucket}/nope.csv", str(tmp_path / "out")))
    assert info.value.file == f"{gcs_bucket}/nope.csv"
    assert not (tmp_path / "out").exists()
