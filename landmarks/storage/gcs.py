"""`gs://bucket/key` objects through google-cloud-storage.

With `STORAGE_EMULATOR_HOST` set, the client talks to that emulator with anonymous
credentials. An upload is atomic by itself: readers see the old object or the new one.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from landmarks.storage.uri import split_uri

if TYPE_CHECKING:
    from google.cloud import storage as gcs

_local = threading.local()


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
    _, bucket, key = split_uri(uri)
    return client().bucket(bucket).blob(key)


class GCSStore:
    def exists(self, uri: str) -> bool:
        return _blob(uri).exists()

    def read_bytes(self, uri: str) -> bytes:
        return _blob(uri).download_as_bytes()

    def write_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> None:
        _blob(uri).upload_from_string(data, content_type=content_type)

    def delete(self, uri: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            _blob(uri).delete()

    def list_files(self, root: str) -> Iterator[str]:
        _, bucket, key = split_uri(root)
        prefix = key.rstrip("/") + "/" if key else ""
        for blob in client().list_blobs(bucket, prefix=prefix):
            if not blob.name.endswith("/"):
                yield blob.name[len(prefix) :]

    def copy(self, src: str, dst: str, content_type: str | None = None) -> None:
        _, sb, sk = split_uri(src)
        _, db, dk = split_uri(dst)
        source = client().bucket(sb)
        source.copy_blob(source.blob(sk), client().bucket(db), dk)
