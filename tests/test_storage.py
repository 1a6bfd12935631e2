from pathlib import Path

import pytest

from landmarks import storage


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
    assert storage.split_gcs("gs://b/k/e/y") == ("b", "k/e/y")
    with pytest.raises(ValueError, match="without a bucket"):
        storage.split_gcs("gs:///k")


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
