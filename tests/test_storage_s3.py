"""minio:// and s3:// against a real S3-compatible server (SeaweedFS, as KFP deploys it).

Each test gets a fresh bucket on the session's server and the environment a pod would
have: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, plus LANDMARKS_MINIO_ENDPOINT for
minio:// or AWS_ENDPOINT_URL_S3 for s3://.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from landmarks import storage
from landmarks.storage import s3
from tests.support.s3 import ADMIN, BUILD_TIMEOUT_S, READER, SeaweedFS

# Whichever test starts the server first may compile it (a cold build takes minutes).
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 300)


@pytest.fixture(params=["minio://", "s3://"])
def bucket(request: pytest.FixtureRequest) -> str:
    """A fresh bucket, once as minio:// (KFP's endpoint variable) and once as s3://."""
    name = "minio_bucket" if request.param == "minio://" else "s3_bucket"
    return request.getfixturevalue(name)


def _bucket_name(uri: str) -> str:
    return storage.split_uri(uri)[1]


def test_round_trip_read_write_exists_list_copy_delete(bucket: str) -> None:
    one, two = storage.join(bucket, "d/one.txt"), storage.join(bucket, "d/sub/two.bin")
    storage.write_text(one, "1")
    storage.write_bytes(two, b"\x00\x02", content_type="application/octet-stream")
    assert storage.exists(one) and storage.exists(two)
    assert not storage.exists(storage.join(bucket, "d/none.txt"))
    assert storage.read_text(one) == "1"
    assert storage.read_bytes(two) == b"\x00\x02"
    assert sorted(storage.list_files(storage.join(bucket, "d"))) == ["one.txt", "sub/two.bin"]
    assert sorted(storage.list_files(storage.join(bucket, "d/"))) == ["one.txt", "sub/two.bin"]
    # A prefix is a folder: "d" does not list "dx/...".
    storage.write_text(storage.join(bucket, "dx/other.txt"), "x")
    assert sorted(storage.list_files(storage.join(bucket, "d"))) == ["one.txt", "sub/two.bin"]
    assert len(list(storage.list_files(bucket))) == 3

    storage.write_text(one, "1 again")  # overwrite
    assert storage.read_text(one) == "1 again"
    storage.copy(one, storage.join(bucket, "e/one.txt"), content_type="text/plain")
    assert storage.read_text(storage.join(bucket, "e/one.txt")) == "1 again"

    storage.delete(one)
    storage.delete(one)  # deleting twice is fine
    assert not storage.exists(one)
    assert sorted(storage.list_files(storage.join(bucket, "d"))) == ["sub/two.bin"]


def test_content_type_is_stored(minio_bucket: str, s3_server: SeaweedFS) -> None:
    storage.write_text(storage.join(minio_bucket, "r.html"), "<p/>", content_type="text/html")
    head = s3_server.client().head_object(Bucket=_bucket_name(minio_bucket), Key="r.html")
    assert head["ContentType"] == "text/html"


def test_trees_go_up_and_come_down(bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel, data in {"a.txt": b"a", "x/b.bin": b"bb", "x/y/c.jpg": b"ccc"}.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    root = storage.join(bucket, "tree")
    storage.upload_tree(src, root)
    assert sorted(storage.list_files(root)) == ["a.txt", "x/b.bin", "x/y/c.jpg"]

    staged = storage.download_tree(root, str(tmp_path / "stage"))
    assert staged == tmp_path / "stage"
    assert {p.relative_to(staged).as_posix(): p.read_bytes() for p in staged.rglob("*.*")} == {
        "a.txt": b"a",
        "x/b.bin": b"bb",
        "x/y/c.jpg": b"ccc",
    }
    # A rerun fetches only what is missing and leaves what is there.
    (staged / "a.txt").write_bytes(b"kept")
    (staged / "x/b.bin").unlink()
    storage.download_tree(root, str(staged))
    assert (staged / "a.txt").read_bytes() == b"kept"
    assert (staged / "x/b.bin").read_bytes() == b"bb"


def test_copy_between_local_disk_and_the_store(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "model.keras"
    local.write_bytes(os.urandom(3000))
    remote = storage.join(bucket, "m/model.keras")
    storage.copy(str(local), remote)
    storage.copy(remote, str(tmp_path / "back" / "model.keras"))
    assert (tmp_path / "back" / "model.keras").read_bytes() == local.read_bytes()


def test_listing_pages_through_more_keys_than_one_page(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3, "LIST_PAGE_SIZE", 7)
    names = [f"k/{i:03d}.txt" for i in range(23)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: storage.write_text(storage.join(bucket, n), n), names))
    assert sorted(storage.list_files(storage.join(bucket, "k"))) == [n[2:] for n in names]


def test_listing_returns_more_than_a_thousand_keys(minio_bucket: str) -> None:
    """S3 answers at most 1000 keys a request: the listing must follow the continuation."""
    names = [f"many/{i:05d}" for i in range(1005)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: storage.write_bytes(storage.join(minio_bucket, n), b""), names))
    assert sorted(storage.list_files(storage.join(minio_bucket, "many"))) == [n[5:] for n in names]


def test_large_object_goes_up_in_parts_and_reads_back_whole(
    minio_bucket: str, s3_server: SeaweedFS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # S3's smallest part is 5 MiB: above a 6 MiB threshold the 8 MiB chunks make two parts.
    monkeypatch.setattr(s3, "SINGLE_PUT_BYTES", 6 * 1024 * 1024)
    data = os.urandom(9 * 1024 * 1024)
    uri = storage.join(minio_bucket, "big.bin")
    storage.write_bytes(uri, data)
    assert storage.read_bytes(uri) == data
    etag = s3_server.client().head_object(Bucket=_bucket_name(minio_bucket), Key="big.bin")
    assert etag["ETag"].strip('"').endswith("-2")  # a multipart object's ETag counts its parts

    local = tmp_path / "big.bin"
    local.write_bytes(data[::-1])
    storage.copy(str(local), uri)  # streamed from disk
    assert storage.read_bytes(uri) == data[::-1]


def test_failed_write_keeps_the_old_object(bucket: str) -> None:
    uri = storage.join(bucket, "x.bin")
    storage.write_bytes(uri, b"old")
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for a bad body
        storage.write_bytes(uri, io.StringIO("not bytes"))  # type: ignore[arg-type]
    assert storage.read_bytes(uri) == b"old"


def test_missing_object_is_file_not_found_naming_the_uri(bucket: str, tmp_path: Path) -> None:
    uri = storage.join(bucket, "no/such.txt")
    with pytest.raises(FileNotFoundError) as caught:
        storage.read_bytes(uri)
    assert isinstance(caught.value, storage.ObjectNotFound)
    assert str(caught.value) == f"{uri}: no such object"
    with pytest.raises(storage.ObjectNotFound, match=r"no/such\.txt"):
        storage.copy(uri, storage.join(bucket, "copy.txt"))
    assert list(storage.list_files(storage.join(bucket, "no"))) == []
    assert storage.download_tree(storage.join(bucket, "no"), str(tmp_path / "s")).exists() is False


def test_missing_bucket_is_named_with_the_uri(bucket: str) -> None:
    scheme = storage.scheme(bucket)
    uri = f"{scheme}no-such-bucket-{_bucket_name(bucket)}/a/b.txt"
    for call in (
        lambda: storage.read_bytes(uri),
        lambda: storage.write_bytes(uri, b"x"),
        lambda: list(storage.list_files(uri)),
    ):
        with pytest.raises(storage.StorageError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith(f"{uri}: ")
        assert "no such bucket" in message and f"no-such-bucket-{_bucket_name(bucket)}" in message
    assert not storage.exists(uri)


def test_wrong_credentials_are_named(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = storage.join(bucket, "a.txt")
    storage.write_text(uri, "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    for call in (
        lambda: storage.read_bytes(uri),
        lambda: storage.write_bytes(uri, b"x"),
        lambda: storage.exists(uri),
        lambda: list(storage.list_files(bucket)),
    ):
        with pytest.raises(storage.StorageError) as caught:
            call()
        assert str(caught.value).startswith(f"{bucket}")
        assert "AWS_SECRET_ACCESS_KEY" in str(caught.value) or "denied" in str(caught.value)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ADMIN.secret_key)
    assert storage.read_text(uri) == "a"  # the right key works again: no stale client


def test_read_only_user_may_read_but_not_write(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = storage.join(bucket, "report.json")
    storage.write_text(uri, "{}")
    for name, value in READER.env().items():
        monkeypatch.setenv(name, value)
    assert storage.read_text(uri) == "{}"
    with pytest.raises(storage.StorageError, match=f"^{uri}: access denied"):
        storage.write_text(uri, "[]")
    with pytest.raises(storage.StorageError, match=f"^{uri}: access denied"):
        storage.delete(uri)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ADMIN.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ADMIN.secret_key)
    assert storage.read_text(uri) == "{}"


def test_no_credentials_say_which_variables(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    uri = storage.join(bucket, "a.txt")
    with pytest.raises(storage.StorageError, match="no credentials: set AWS_ACCESS_KEY_ID"):
        storage.read_bytes(uri)


def test_unreachable_endpoint_is_named(monkeypatch: pytest.MonkeyPatch, minio_bucket: str) -> None:
    from tests.support.net import free_port

    monkeypatch.setenv("LANDMARKS_MINIO_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(s3, "MAX_ATTEMPTS", 1)
    uri = storage.join(minio_bucket, "a.txt")
    with pytest.raises(storage.StorageError, match="cannot reach the endpoint"):
        storage.read_bytes(uri)


def test_minio_defaults_to_the_kfp_in_cluster_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANDMARKS_MINIO_ENDPOINT", raising=False)
    assert s3.client("minio://").meta.endpoint_url == "http://seaweedfs.kubeflow:9000"
    monkeypatch.setenv("LANDMARKS_MINIO_ENDPOINT", "https://store.example:9443")
    assert s3.client("minio://").meta.endpoint_url == "https://store.example:9443"


def test_only_local_and_real_gcs_are_read_by_tensorflow_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    assert storage.tensorflow_reads("/data/split")
    assert storage.tensorflow_reads("gs://b/split")
    assert not storage.tensorflow_reads("s3://b/split")
    assert not storage.tensorflow_reads("minio://mlpipeline/split")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    assert not storage.tensorflow_reads("gs://b/split")
