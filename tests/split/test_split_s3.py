"""The split stage with KFP's store (minio://, a real SeaweedFS): in, out, across, re-runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from landmarks import storage
from landmarks.artifacts import LABEL_MAP, SPLIT_MANIFEST, SPLIT_SUMMARY
from landmarks.split import SplitOptions, read_label_map, read_split_manifest, run_split
from tests.split.ingest_dir import make_ingest
from tests.support.s3 import BUILD_TIMEOUT_S, SeaweedFS

OUTPUTS = {SPLIT_MANIFEST, LABEL_MAP, SPLIT_SUMMARY}
# Whichever test starts the server first may compile it (a cold build takes minutes).
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 300)


def _split(ingest: str, out: str, **kwargs) -> object:
    return run_split(SplitOptions(ingest_dir=ingest, out=out, progress=False, **kwargs))


def test_split_to_minio_writes_the_same_split_as_local_disk(
    minio_bucket: str, s3_server: SeaweedFS, tmp_path: Path
) -> None:
    ingest = make_ingest(tmp_path / "ingest", {3: 8, 1: 6}, labels={1: "Big Ben"})
    out = storage.join(minio_bucket, "v2/artifacts/split")
    _split(ingest, out + "/", seed=5)  # a trailing slash names the same prefix
    _split(ingest, str(tmp_path / "local"), seed=5)

    rows = read_split_manifest(out)
    local = tmp_path / "local"
    assert (
        storage.read_bytes(storage.join(out, SPLIT_MANIFEST))
        == (local / SPLIT_MANIFEST).read_bytes()
    )
    assert set(storage.list_files(out)) == {r.path for r in rows} | OUTPUTS
    assert [e.name for e in read_label_map(out)] == ["Big Ben", ""]
    sample = rows[-1]
    assert storage.read_bytes(storage.join(out, sample.path)) == (local / sample.path).read_bytes()
    _, bucket, key = storage.split_uri(storage.join(out, sample.path))
    assert s3_server.client().head_object(Bucket=bucket, Key=key)["ContentType"] == "image/jpeg"


def test_split_from_minio_to_minio_and_to_local_disk(minio_bucket: str, tmp_path: Path) -> None:
    ingest = storage.join(minio_bucket, "ingest")
    storage.upload_tree(make_ingest(tmp_path / "ingest", {10: 7, 20: 7}), ingest)

    remote = storage.join(minio_bucket, "split")
    _split(ingest, remote)  # within the store: server-side copies
    _split(ingest, str(tmp_path / "from-minio"))
    expected = {r.path for r in read_split_manifest(remote)}
    assert set(storage.list_files(remote)) == expected | OUTPUTS
    assert {
        p.relative_to(tmp_path / "from-minio").as_posix()
        for p in (tmp_path / "from-minio").rglob("*.jpg")
    } == expected


def test_rerun_on_minio_deletes_objects_of_the_previous_split(
    minio_bucket: str, tmp_path: Path
) -> None:
    out = storage.join(minio_bucket, "split")
    _split(make_ingest(tmp_path / "one", {1: 4, 2: 4, 3: 4}), out)
    second = _split(make_ingest(tmp_path / "two", {7: 4, 8: 4}), out)
    assert set(storage.list_files(out)) == {r.path for r in second.rows} | OUTPUTS
