"""The split stage against the real GCS emulator: gs:// output, gs:// input, re-runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from landmarks import storage
from landmarks.artifacts import LABEL_MAP, SPLIT_MANIFEST, SPLIT_SUMMARY
from landmarks.errors import InputError, LandmarksError
from landmarks.split import SplitOptions, read_label_map, read_split_manifest, run_split
from tests.split.ingest_dir import make_ingest

OUTPUTS = {SPLIT_MANIFEST, LABEL_MAP, SPLIT_SUMMARY}


def _split(ingest: str, out: str, **kwargs) -> object:
    return run_split(SplitOptions(ingest_dir=ingest, out=out, progress=False, **kwargs))


def test_split_to_gcs_writes_the_same_split_as_local_disk(gcs_bucket: str, tmp_path: Path) -> None:
    ingest = make_ingest(tmp_path / "ingest", {3: 8, 1: 6}, labels={1: "Big Ben"})
    out = storage.join(gcs_bucket, "runs/split")
    _split(ingest, out + "/", seed=5)  # a trailing slash names the same prefix
    _split(ingest, str(tmp_path / "local"), seed=5)

    rows = read_split_manifest(out)
    assert (
        storage.read_bytes(storage.join(out, SPLIT_MANIFEST))
        == (tmp_path / "local" / SPLIT_MANIFEST).read_bytes()
    )
    assert set(storage.list_files(out)) == {r.path for r in rows} | OUTPUTS
    assert [e.name for e in read_label_map(out)] == ["Big Ben", ""]
    sample = rows[-1]
    assert (
        storage.read_bytes(storage.join(out, sample.path))
        == (tmp_path / "local" / sample.path).read_bytes()
    )
    _, bucket, key = storage.split_uri(storage.join(out, sample.path))
    blob = storage.client().bucket(bucket).get_blob(key)
    assert blob.content_type == "image/jpeg"


def test_split_reads_an_ingest_output_on_gcs(gcs_bucket: str, tmp_path: Path) -> None:
    local = make_ingest(tmp_path / "ingest", {10: 7, 20: 7})
    ingest = storage.join(gcs_bucket, "ingest")
    storage.upload_tree(local, ingest)

    to_gcs = storage.join(gcs_bucket, "split")
    _split(ingest, to_gcs)  # gs:// to gs://: server-side copies
    _split(ingest, str(tmp_path / "from-gcs"))  # gs:// to local disk
    expected = {r.path for r in read_split_manifest(to_gcs)}
    assert set(storage.list_files(to_gcs)) == expected | OUTPUTS
    assert {
        p.relative_to(tmp_path / "from-gcs").as_posix()
        for p in (tmp_path / "from-gcs").rglob("*.jpg")
    } == expected


def test_rerun_on_gcs_deletes_objects_of_the_previous_split(
    gcs_bucket: str, tmp_path: Path
) -> None:
    out = storage.join(gcs_bucket, "split")
    _split(make_ingest(tmp_path / "one", {1: 4, 2: 4, 3: 4}), out)
    second = _split(make_ingest(tmp_path / "two", {7: 4, 8: 4}), out)
    assert set(storage.list_files(out)) == {r.path for r in second.rows} | OUTPUTS


def test_gcs_rerun_with_a_missing_image_leaves_previous_split_alone(
    gcs_bucket: str, tmp_path: Path
) -> None:
    out = storage.join(gcs_bucket, "split")
    _split(make_ingest(tmp_path / "one", {1: 5, 2: 5}), out)
    before = sorted(storage.list_files(out))
    local = make_ingest(tmp_path / "two", {7: 4, 8: 4})
    ingest = storage.join(gcs_bucket, "ingest")
    storage.upload_tree(local, ingest)
    victim = next(p for p in storage.list_files(ingest) if p.endswith(".jpg"))
    storage.delete(storage.join(ingest, victim))
    with pytest.raises(InputError, match=f"{victim} not found") as caught:
        _split(ingest, out)
    assert caught.value.field == "path"
    assert sorted(storage.list_files(out)) == before


def test_refuses_to_replace_a_gcs_prefix_that_is_not_a_split(
    gcs_bucket: str, tmp_path: Path
) -> None:
    out = storage.join(gcs_bucket, "data")
    storage.write_text(storage.join(out, "models/model.keras"), "weights")
    with pytest.raises(LandmarksError, match=r"holds models.*refusing"):
        _split(make_ingest(tmp_path / "ingest", {1: 5, 2: 5}), out)
    assert storage.read_text(storage.join(out, "models/model.keras")) == "weights"
