from collections.abc import Callable
from pathlib import Path

import pytest

from landmarks import storage
from landmarks.errors import InputError


def test_local_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.txt"
    storage.write_text(str(target), "one")
    storage.write_text(str(target), "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["b.txt"]


def test_local_write_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    storage.write_bytes(str(target), b"old")

    with pytest.raises(TypeError):
        storage.write_bytes(str(target), object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_join_and_split() -> None:
    assert storage.join("gs://b/root/", "train", "1/x.jpg") == "gs://b/root/train/1/x.jpg"
    assert storage.join("minio://b/r", "x") == "minio://b/r/x"
    assert storage.split_uri("gs://b/k/e/y") == ("gs://", "b", "k/e/y")
    assert storage.split_uri("s3://b/k") == ("s3://", "b", "k")
    assert storage.split_uri("minio://mlpipeline/v2/artifacts") == (
        "minio://",
        "mlpipeline",
        "v2/artifacts",
    )
    for uri in ("gs:///k", "s3:///k", "minio://"):
        with pytest.raises(InputError, match="without a bucket"):
            storage.split_uri(uri)


BAD_URIS = ["hdfs://namenode/data", "minio:/mlpipeline/x", "s3:/bucket/key", "ftp://host/f"]
# Every public entry point, called with the bad URI in the position named.
ENTRY_POINTS: dict[str, Callable[[str, Path], object]] = {
    "exists": lambda uri, tmp: storage.exists(uri),
    "read_bytes": lambda uri, tmp: storage.read_bytes(uri),
    "read_text": lambda uri, tmp: storage.read_text(uri),
    "write_bytes": lambda uri, tmp: storage.write_bytes(uri, b"x"),
    "write_text": lambda uri, tmp: storage.write_text(uri, "x"),
    "delete": lambda uri, tmp: storage.delete(uri),
    "list_files": lambda uri, tmp: list(storage.list_files(uri)),
    "copy from": lambda uri, tmp: storage.copy(uri, str(tmp / "x")),
    "copy to": lambda uri, tmp: storage.copy(str(tmp / "src"), uri),
    "download_tree": lambda uri, tmp: storage.download_tree(uri, str(tmp / "stage")),
    "upload_tree": lambda uri, tmp: storage.upload_tree(tmp, uri),
    "join": lambda uri, tmp: storage.join(uri, "x"),
    "is_remote": lambda uri, tmp: storage.is_remote(uri),
    "tensorflow_reads": lambda uri, tmp: storage.tensorflow_reads(uri),
}


@pytest.mark.parametrize("uri", BAD_URIS)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_unknown_scheme_is_an_input_error_from_every_entry_point(
    entry: str, uri: str, tmp_path: Path
) -> None:
    (tmp_path / "src").write_text("data")
    with pytest.raises(InputError) as caught:
        ENTRY_POINTS[entry](uri, tmp_path)
    message = str(caught.value)
    assert uri in message
    assert "gs://" in message and "s3://" in message and "minio://" in message
    # Nothing was written anywhere, not even as a local path named like the URI.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    assert not Path(uri.split(":", 1)[0] + ":").exists()


def test_local_paths_with_a_colon_are_still_local(tmp_path: Path) -> None:
    target = tmp_path / "run:1" / "a.txt"
    storage.write_text(str(target), "ok")
    assert storage.read_text(str(target)) == "ok"
    assert not storage.is_remote("relative:name/file")


def test_gcs_round_trip_list_copy_delete(gcs_bucket: str, tmp_path: Path) -> None:
    storage.write_text(storage.join(gcs_bucket, "d/one.txt"), "1")
    storage.write_bytes(storage.join(gcs_bucket, "d/sub/two.bin"), b"2")
    assert storage.exists(storage.join(gcs_bucket, "d/one.txt"))
    assert sorted(storage.list_files(storage.join(gcs_bucket, "d"))) == ["one.txt", "sub/two.bin"]
    storage.copy(storage.join(gcs_bucket, "d/one.txt"), storage.join(gcs_bucket, "e/one.txt"))
    assert storage.read_text(storage.join(gcs_bucket, "e/one.txt")) == "1"
    staged = storage.download_tree(storage.join(gcs_bucket, "d"), str(tmp_path / "stage"))
    assert (staged / "sub/two.bin").read_bytes() == b"2"
    storage.delete(storage.join(gcs_bucket, "d/one.txt"))
    storage.delete(storage.join(gcs_bucket, "d/one.txt"))  # deleting twice is fine
    assert not storage.exists(storage.join(gcs_bucket, "d/one.txt"))


def test_local_write_is_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    storage.write_text(str(target), "<html/>")
    assert target.stat().st_mode & 0o044 == 0o044
