"""Read and write files on local disk or in an object store: `gs://`, `s3://`, `minio://`.

Every stage takes its inputs and outputs as plain strings so the same code runs on a
laptop, under KFP's local runner and in a cluster pod. Writes are atomic everywhere: a
local file is written beside its target and renamed into place; an object upload is
atomic by itself. Any other scheme (`hdfs://x`, or a slip like `minio:/x`) is an
InputError from every function here, never taken for a local path.

Where each scheme finds its endpoint and credentials (the environment):

- `gs://`: Google's default credentials (GOOGLE_APPLICATION_CREDENTIALS, workload
  identity); with STORAGE_EMULATOR_HOST the client talks to that emulator anonymously.
- `s3://`: boto3's chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
  AWS_REGION, AWS_PROFILE, IRSA web identity, instance roles); AWS_ENDPOINT_URL_S3 (or
  AWS_ENDPOINT_URL) points it at an S3-compatible service.
- `minio://`: KFP's in-cluster artifact store (the default pipeline root
  `minio://mlpipeline/v2/artifacts`). Endpoint LANDMARKS_MINIO_ENDPOINT, default KFP's
  `http://seaweedfs.kubeflow:9000`; credentials AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
  which pods take from KFP's `mlpipeline-minio-artifact` Secret (keys `accesskey`,
  `secretkey`).

A store's refusal (no such bucket, access denied, wrong credentials) is a StorageError
naming the URI; a missing object on s3:// or minio:// is ObjectNotFound, which is also a
FileNotFoundError as for local files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from landmarks.storage.errors import REMOTE_SCHEMES, ObjectNotFound, StorageError
from landmarks.storage.gcs import GCSStore, client
from landmarks.storage.gcs import _local as _local  # benchmarks drop a cached GCS client
from landmarks.storage.local import LocalStore
from landmarks.storage.s3 import MINIO_SCHEME, S3Store
from landmarks.storage.uri import scheme, split_uri

__all__ = [
    "GCS_SCHEME",
    "MINIO_SCHEME",
    "REMOTE_SCHEMES",
    "S3_SCHEME",
    "ObjectNotFound",
    "StorageError",
    "client",
    "copy",
    "delete",
    "download_tree",
    "exists",
    "is_gcs",
    "is_remote",
    "join",
    "list_files",
    "read_bytes",
    "read_text",
    "scheme",
    "split_uri",
    "tensorflow_reads",
    "upload_tree",
    "write_bytes",
    "write_text",
]

GCS_SCHEME = "gs://"
S3_SCHEME = "s3://"


class Store(Protocol):
    def exists(self, uri: str) -> bool: ...
    def read_bytes(self, uri: str) -> bytes: ...
    def write_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> None: ...
    def delete(self, uri: str) -> None: ...
    def list_files(self, root: str) -> Iterator[str]: ...
    def copy(self, src: str, dst: str, content_type: str | None = None) -> None: ...


_LOCAL = LocalStore()
_STORES: dict[str, Store] = {
    GCS_SCHEME: GCSStore(),
    S3_SCHEME: S3Store(S3_SCHEME),
    MINIO_SCHEME: S3Store(MINIO_SCHEME),
}


def _store(uri: str) -> Store:
    found = scheme(uri)
    return _LOCAL if found is None else _STORES[found]


def is_remote(uri: str) -> bool:
    """True for an object-store URI, False for a local path; InputError for another scheme."""
    return scheme(uri) is not None


def is_gcs(uri: str) -> bool:
    return uri.startswith(GCS_SCHEME)


def tensorflow_reads(uri: str) -> bool:
    """Whether TensorFlow's own file system (tf.data, tf.io) can read `uri` in place.

    It reads local paths and real gs://, but ignores STORAGE_EMULATOR_HOST, and TensorFlow
    2.6+ has no s3:// file system at all: those are staged to local disk through this module.
    """
    import os

    found = scheme(uri)
    if found is None:
        return True
    return found == GCS_SCHEME and not os.environ.get("STORAGE_EMULATOR_HOST")


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        out = base.rstrip("/")
        for part in parts:
            out = f"{out}/{part.strip('/')}"
        return out
    return str(Path(base, *parts))


def exists(uri: str) -> bool:
    return _store(uri).exists(uri)


def read_bytes(uri: str) -> bytes:
    return _store(uri).read_bytes(uri)


def read_text(uri: str, encoding: str = "utf-8") -> str:
    return read_bytes(uri).decode(encoding)


def write_bytes(uri: str, data: bytes, content_type: str | None = None) -> None:
    """Write atomically: readers see the old content or the new one, never a part."""
    _store(uri).write_bytes(uri, data, content_type)


def write_text(uri: str, text: str, content_type: str = "text/plain") -> None:
    write_bytes(uri, text.encode("utf-8"), content_type=content_type)


def delete(uri: str) -> None:
    """Remove a file or object; one that is not there is fine."""
    _store(uri).delete(uri)


def list_files(root: str) -> Iterator[str]:
    """Paths of all files under `root`, relative to it, with `/` separators."""
    return _store(root).list_files(root)


def copy(src: str, dst: str, content_type: str | None = None) -> None:
    """Copy one file; within one store server-side, across stores through this process."""
    source, target = _store(src), _store(dst)
    if source is target:
        target.copy(src, dst, content_type)
    elif isinstance(target, S3Store) and source is _LOCAL:
        target.upload_file(src, dst, content_type)  # streamed, multipart when large
    else:
        target.write_bytes(dst, source.read_bytes(src), content_type)


def download_tree(root: str, dest: str) -> Path:
    """Stage a directory tree on local disk; a local root is returned as is.

    Files already at `dest` are kept, so a rerun only fetches what is missing.
    """
    if not is_remote(root):
        return Path(root)
    out = Path(dest)
    for rel in list_files(root):
        target = out / rel
        if target.exists():
            continue
        _LOCAL.write_bytes(str(target), read_bytes(join(root, rel)))
    return out


def upload_tree(src: str | Path, root: str) -> None:
    """Copy a local directory tree to `root` (local or an object store)."""
    base = Path(src)
    _store(root)  # an unsupported scheme fails before anything is read
    for path in sorted(base.rglob("*")):
        if path.is_file():
            copy(str(path), join(root, path.relative_to(base).as_posix()))
