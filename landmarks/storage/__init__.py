"""Read and write files on local disk or in Google Cloud Storage (`gs://bucket/key`).

Every stage takes its inputs and outputs as plain strings so the same code runs on a
laptop, under KFP's local runner and in a cluster pod. Writes are atomic on both: a
local file is written beside its target and renamed into place; a GCS object upload
is atomic by itself. With `STORAGE_EMULATOR_HOST` set, the client talks to that
emulator with anonymous credentials.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import storage as gcs

GCS_SCHEME = "gs://"
_local = threading.local()


def is_gcs(uri: str) -> bool:
    return uri.startswith(GCS_SCHEME)


def split_gcs(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> (`bucket`, `a/b`)."""
    if not is_gcs(uri):
        raise ValueError(f"not a gs:// URI: {uri}")
    bucket, _, key = uri[len(GCS_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"gs:// URI without a bucket: {uri}")
    return bucket, key


def join(base: str, *parts: str) -> str:
    if is_gcs(base):
        out = base.rstrip("/")
        for part in parts:
            out = f"{out}/{part.strip('/')}"
        return out
    return str(Path(base, *parts))


def client() -> gcs.Client:
    """A storage client per thread (the underlying HTTP session is not shared safely)."""
    cached = getattr(_local, "client", None)
    if cached is None:
        from google.cloud import storage as gcs

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            cached = gcs.Client(
                project=os.environ.get("GOOGLE_CLOUD_PROJECT", "landmarks-local"),
                credentials=AnonymousCredentials(),
            )
        else:
            cached = gcs.Client()
        _local.client = cached
    return cached


def _blob(uri: str):  # -> gcs.Blob
    bucket, key = split_gcs(uri)
    return client().bucket(bucket).blob(key)


def exists(uri: str) -> bool:
    if is_gcs(uri):
        return _blob(uri).exists()
    return Path(uri).exists()


def read_bytes(uri: str) -> bytes:
    if is_gcs(uri):
        return _blob(uri).download_as_bytes()
    return Path(uri).read_bytes()


def read_text(uri: str, encoding: str = "utf-8") -> str:
    return read_bytes(uri).decode(encoding)


def write_bytes(uri: str, data: bytes, content_type: str | None = None) -> None:
    """Write atomically: readers see the old content or the new one, never a part."""
    if is_gcs(uri):
        _blob(uri).upload_from_string(data, content_type=content_type)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # mkstemp creates 0600 files; outputs such as reports are meant to be shared.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(uri: str, text: str, content_type: str = "text/plain") -> None:
    write_bytes(uri, text.encode("utf-8"), content_type=content_type)


def delete(uri: str) -> None:
    if is_gcs(uri):
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            _blob(uri).delete()
        return
    Path(uri).unlink(missing_ok=True)


def list_files(root: str) -> Iterator[str]:
    """Paths of all files under `root`, relative to it, with `/` separators."""
    if is_gcs(root):
        bucket, key = split_gcs(root)
        prefix = key.rstrip("/") + "/" if key else ""
        for blob in client().list_blobs(bucket, prefix=prefix):
            if not blob.name.endswith("/"):
                yield blob.name[len(prefix) :]
        return
    base = Path(root)
    if not base.exists():
        return
    for path in sorted(base.rglob("*")):
        if path.is_file():
            yield path.relative_to(base).as_posix()


def copy(src: str, dst: str) -> None:
    if is_gcs(src) and is_gcs(dst):
        sb, sk = split_gcs(src)
        db, dk = split_gcs(dst)
        source = client().bucket(sb)
        source.copy_blob(source.blob(sk), client().bucket(db), dk)
        return
    write_bytes(dst, read_bytes(src))


def download_tree(root: str, dest: str) -> Path:
    """Stage a directory tree (local or gs://) on local disk; a local root is returned as is.

    TensorFlow's own gs:// filesystem ignores STORAGE_EMULATOR_HOST, so code that feeds
    tf.data reads a local copy made through the GCS client.
    """
    if not is_gcs(root):
        return Path(root)
    out = Path(dest)
    for rel in list_files(root):
        target = out / rel
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(str(target), read_bytes(join(root, rel)))
    return out


def upload_tree(src: str | Path, root: str) -> None:
    """Copy a local directory tree to `root` (local or gs://)."""
    base = Path(src)
    for path in sorted(base.rglob("*")):
        if path.is_file():
            write_bytes(join(root, path.relative_to(base).as_posix()), path.read_bytes())
