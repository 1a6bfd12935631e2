"""`s3://` and `minio://` objects through boto3.

`s3://` is configured the way every AWS tool is: boto3's own chain (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_PROFILE, web identity / IRSA,
instance roles) and AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for an S3-compatible service.

`minio://` is Kubeflow Pipelines' name for its in-cluster store (SeaweedFS since KFP 2.15,
MinIO before): the endpoint is LANDMARKS_MINIO_ENDPOINT, by default KFP's own
`http://seaweedfs.kubeflow:9000`, and the credentials are the same AWS_* variables, which a
pod gets from the `accesskey` / `secretkey` keys of KFP's `mlpipeline-minio-artifact`
Secret. As KFP does, minio:// uses path-style addressing.

A PUT (and a completed multipart upload) is atomic: readers see the old object or the
new one, never a part.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from typing import Any

from landmarks.storage.errors import ObjectNotFound, StorageError
from landmarks.storage.uri import split_uri

MINIO_SCHEME = "minio://"
MINIO_ENDPOINT_ENV = "LANDMARKS_MINIO_ENDPOINT"
# KFP 2.17's default for minio:// (backend/src/v2/objectstore: DefaultEndpointInMultiUserMode),
# over plain HTTP as KFP's own default session uses it.
KFP_MINIO_ENDPOINT = "http://seaweedfs.kubeflow:9000"
# KFP's Secret with the in-cluster store's credentials, and its keys.
KFP_MINIO_SECRET = "mlpipeline-minio-artifact"
KFP_MINIO_ACCESS_KEY_KEY = "accesskey"
KFP_MINIO_SECRET_KEY_KEY = "secretkey"
# Which variable each key of that Secret becomes in a pod (kfp-kubernetes use_secret_as_env).
KFP_MINIO_SECRET_ENV = {
    KFP_MINIO_ACCESS_KEY_KEY: "AWS_ACCESS_KEY_ID",
    KFP_MINIO_SECRET_KEY_KEY: "AWS_SECRET_ACCESS_KEY",
}
# Environment that decides which client a scheme gets: a change (a test's new
# credentials, another endpoint) makes a new client.
_CLIENT_ENV = (
    MINIO_ENDPOINT_ENV,
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)
# Objects up to this size go up in one PUT; larger ones as a multipart upload.
SINGLE_PUT_BYTES = 64 * 1024 * 1024
# Keys per listing request; S3's maximum (and default) is 1000.
LIST_PAGE_SIZE = 1000
# Attempts per request (botocore's "standard" mode retries throttling and 5xx with backoff).
MAX_ATTEMPTS = 5
_local = threading.local()


def minio_endpoint() -> str:
    return os.environ.get(MINIO_ENDPOINT_ENV) or KFP_MINIO_ENDPOINT


def client(scheme: str) -> Any:  # -> botocore S3 client
    """A client per thread and scheme (boto3 sessions are not thread-safe)."""
    key = (scheme, *(os.environ.get(name) for name in _CLIENT_ENV))
    cache: dict[tuple[str | None, ...], Any] = _local.__dict__.setdefault("clients", {})
    if key not in cache:
        cache.clear()  # the environment changed: the old clients are stale
        cache[key] = _new_client(scheme)
    return cache[key]


def _new_client(scheme: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    custom_endpoint = scheme == MINIO_SCHEME or bool(
        os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    options: dict[str, Any] = {
        "retries": {"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        "connect_timeout": 10,
        "read_timeout": 120,
    }
    if custom_endpoint:
        # S3-compatible stores: bucket in the path (no wildcard DNS needed), and checksums
        # only where S3 requires them (not every store accepts the newer default ones).
        options["s3"] = {"addressing_style": "path"}
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    kwargs: dict[str, Any] = {"config": Config(**options)}
    if scheme == MINIO_SCHEME:
        kwargs["endpoint_url"] = minio_endpoint()
        # Signature V4 needs a region; in-cluster stores accept any.
        kwargs["region_name"] = session.region_name or "us-east-1"
    return session.client("s3", **kwargs)


def _explain(err: Exception, uri: str) -> StorageError:
    """The store's refusal as an error naming the URI (and what to check)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    scheme, bucket, _ = split_uri(uri)
    if isinstance(err, NoCredentialsError):
        return StorageError(uri, "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(err, EndpointConnectionError):
        return StorageError(uri, f"cannot reach the endpoint: {err}")
    if not isinstance(err, ClientError):
        return StorageError(uri, str(err))
    info = err.response.get("Error", {})
    code = str(info.get("Code", ""))
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    endpoint = client(scheme).meta.endpoint_url
    if code in ("NoSuchKey", "404") or (code == "" and status == 404):
        return ObjectNotFound(uri)
    if code == "NoSuchBucket":
        return StorageError(uri, f"no such bucket {bucket!r} at {endpoint}")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return StorageError(
            uri,
            f"{endpoint} does not accept these credentials ({code}): check "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    if code in ("AccessDenied", "403") or status == 403:
        return StorageError(uri, f"access denied by {endpoint} ({info.get('Message') or code})")
    return StorageError(uri, f"{code or status}: {info.get('Message') or err}")


def _is_missing_key(err: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(err, ClientError):
        return False
    code = str(err.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


class S3Store:
    """The S3 API, for `s3://` (AWS or AWS_ENDPOINT_URL_S3) or `minio://` (KFP's store)."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    def _call(self, uri: str, method: str, **kwargs: Any) -> Any:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(client(self.scheme), method)(**kwargs)
        except (ClientError, BotoCoreError, Boto3Error) as err:
            raise _explain(err, uri) from err

    def _object(self, uri: str) -> tuple[str, str]:
        _, bucket, key = split_uri(uri)
        if not key or key.endswith("/"):
            raise StorageError(uri, "names a bucket or folder, not an object")
        return bucket, key

    def exists(self, uri: str) -> bool:
        from botocore.exceptions import ClientError

        bucket, key = self._object(uri)
        try:
            client(self.scheme).head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            # HEAD has no body, so a missing bucket reads as a plain 404 too: either way
            # there is no such object.
            if _is_missing_key(err):
                return False
            raise _explain(err, uri) from err
        return True

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = self._object(uri)
        body = self._call(uri, "get_object", Bucket=bucket, Key=key)["Body"]
        with body:
            return body.read()

    def write_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> None:
        bucket, key = self._object(uri)
        extra = {"ContentType": content_type} if content_type else {}
        if len(data) <= SINGLE_PUT_BYTES:
            self._call(uri, "put_object", Bucket=bucket, Key=key, Body=data, **extra)
            return
        self._upload(uri, io.BytesIO(data), extra)

    def upload_file(self, path: str, uri: str, content_type: str | None = None) -> None:
        """A local file to `uri`: one PUT when small, else streamed in parts."""
        if os.path.getsize(path) <= SINGLE_PUT_BYTES:
            with open(path, "rb") as handle:
                self.write_bytes(uri, handle.read(), content_type)
            return
        extra = {"ContentType": content_type} if content_type else {}
        with open(path, "rb") as handle:
            self._upload(uri, handle, extra)

    def _upload(self, uri: str, handle: Any, extra: dict[str, str]) -> None:
        from boto3.s3.transfer import TransferConfig

        bucket, key = self._object(uri)
        config = TransferConfig(multipart_threshold=SINGLE_PUT_BYTES, max_concurrency=4)
        self._call(
            uri,
            "upload_fileobj",
            Fileobj=handle,
            Bucket=bucket,
            Key=key,
            ExtraArgs=extra or None,
            Config=config,
        )

    def delete(self, uri: str) -> None:
        bucket, key = self._object(uri)
        # S3 answers 204 whether or not the key existed: deleting twice is fine.
        self._call(uri, "delete_object", Bucket=bucket, Key=key)

    def list_files(self, root: str) -> Iterator[str]:
        _, bucket, key = split_uri(root)
        prefix = key.rstrip("/") + "/" if key else ""
        pages = (
            client(self.scheme)
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": LIST_PAGE_SIZE})
        )
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"]
                    if not name.endswith("/"):  # folder markers some tools create
                        yield name[len(prefix) :]
        except (ClientError, BotoCoreError) as err:
            raise _explain(err, root) from err

    def copy(self, src: str, dst: str, content_type: str | None = None) -> None:
        """Server-side within the store; the object keeps its content type."""
        sb, sk = self._object(src)
        db, dk = self._object(dst)
        try:
            # The managed copy switches to a multipart copy above 5 GB, where CopyObject stops.
            self._call(dst, "copy", CopySource={"Bucket": sb, "Key": sk}, Bucket=db, Key=dk)
        except ObjectNotFound as err:
            # It reads the source's size first: a 404 there is about the source.
            raise ObjectNotFound(src) from err.__cause__
