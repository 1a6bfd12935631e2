"""What the storage layer raises: every error names the URI it was about."""

from __future__ import annotations

from landmarks.errors import InputError, LandmarksError

# Every scheme the storage layer reads and writes; anything else that looks like a URI
# (`hdfs://x`, `minio:/x`) is refused rather than taken for a local path.
REMOTE_SCHEMES = ("gs://", "s3://", "minio://")


class StorageError(LandmarksError):
    """An object store refused or failed a request (no such bucket, access denied, ...)."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")


class ObjectNotFound(StorageError, FileNotFoundError):
    """No object at the URI; a FileNotFoundError too, so callers treat it like a local file."""

    def __init__(self, uri: str, reason: str = "no such object") -> None:
        super().__init__(uri, reason)

    def __str__(self) -> str:
        # FileNotFoundError's own __str__ would print "[Errno None] ..."
        return f"{self.uri}: {self.reason}"


def unsupported_scheme(uri: str) -> InputError:
    return InputError(
        "unsupported storage URI: use a local path or one of "
        f"{', '.join(s + 'bucket/key' for s in REMOTE_SCHEMES)}",
        file=uri,
    )
