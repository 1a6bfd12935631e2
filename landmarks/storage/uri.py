"""Which store a URI names, and its bucket and key."""

from __future__ import annotations

import re

from landmarks.errors import InputError
from landmarks.storage.errors import REMOTE_SCHEMES, unsupported_scheme

# Something that starts like a URI (`name:/`), which a local path does not.
_URI_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def scheme(uri: str) -> str | None:
    """The remote scheme of `uri` (`gs://`, `s3://`, `minio://`), or None for a local path.

    Raises InputError for any other scheme, or a malformed one such as `minio:/x`.
    """
    for known in REMOTE_SCHEMES:
        if uri.startswith(known):
            return known
    if _URI_LIKE.match(uri):
        raise unsupported_scheme(uri)
    return None


def split_uri(uri: str) -> tuple[str, str, str]:
    """`s3://bucket/a/b` -> (`s3://`, `bucket`, `a/b`)."""
    found = scheme(uri)
    if found is None:
        raise InputError("not an object-store URI", file=uri)
    bucket, _, key = uri[len(found) :].partition("/")
    if not bucket:
        raise InputError(f"{found} URI without a bucket", file=uri)
    return found, bucket, key
