"""Where image bytes come from: HTTP(S), `gs://` objects, or a local GLDv2 image tree.

Each source returns the raw bytes of one image or raises `FetchError` with a reason code
and whether trying again could help. Retrying is the caller's business
(`landmarks.ingest.fetch`), so each `fetch` here is a single attempt.
"""

from __future__ import annotations

import email.utils
import logging
import os
import tarfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from landmarks import storage
from landmarks.errors import InputError
from landmarks.ingest.manifest import IMAGES_DIR, image_rel_path

log = logging.getLogger(__name__)

# Reason codes worth another attempt, in this run (with backoff) or in a later run
# (a resume retries rows that failed with one of these).
_TRANSIENT_CODES = frozenset(
    {
        "timeout",
        "connection_error",
        "truncated_body",
        "gcs_error",
        "http_408",
        "http_429",
        "duplicate_lost",  # set by the run itself: its twin failed, so fetch this one again
    }
)


def is_transient(code: str) -> bool:
    """Whether a failure with this reason code may succeed if tried again."""
    return code in _TRANSIENT_CODES or (code.startswith("http_5") and len(code) == 8)


class FetchError(Exception):
    """One attempt to get an image's bytes failed.

    Attributes:
        code: Short reason code for the manifest and the summary (`http_404`, `timeout`).
        detail: Human-readable detail.
        transient: Whether another attempt may succeed.
        retry_after: Seconds the server asked us to wait (`Retry-After`), if it did.
    """

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        transient: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.detail = detail
        self.transient = is_transient(code) if transient is None else transient
        self.retry_after = retry_after
        super().__init__(f"{code}: {detail}")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpSource:
    """GETs over one `requests.Session` per worker thread (keep-alive per thread).

    `timeout` bounds connecting, each read, and the whole body: a server that trickles
    bytes cannot hold a worker longer than that.
    """

    def __init__(self, *, timeout: float, user_agent: str, max_bytes: int) -> None:
        self.timeout = timeout
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self.user_agent
            # Retries belong to our retry loop (it honours Retry-After); keep urllib3's off.
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=8, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def fetch(self, url: str) -> bytes:
        deadline = time.monotonic() + self.timeout
        try:
            with self._session().get(url, timeout=self.timeout, stream=True) as resp:
                self._check_status(resp)
                declared = resp.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise FetchError("too_large", f"Content-Length {declared} > {self.max_bytes}")
                body = bytearray()
                for chunk in resp.iter_content(chunk_size=65536):
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise FetchError("too_large", f"body exceeds {self.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError("timeout", f"body not complete after {self.timeout}s")
                return bytes(body)
        except requests.exceptions.Timeout as err:
            raise FetchError("timeout", f"no response within {self.timeout}s") from err
        except requests.exceptions.TooManyRedirects as err:
            raise FetchError("too_many_redirects", str(err)) from err
        except requests.exceptions.ChunkedEncodingError as err:
            # urllib3 checks Content-Length: a connection closed early lands here.
            raise FetchError("truncated_body", _short(err)) from err
        except requests.exceptions.ConnectionError as err:
            # requests re-raises read timeouts inside the body as ConnectionError.
            if _caused_by(err, urllib3.exceptions.ReadTimeoutError):
                raise FetchError("timeout", f"read stalled for {self.timeout}s") from err
            if _caused_by(err, urllib3.exceptions.ProtocolError):
                raise FetchError("truncated_body", _short(err)) from err
            raise FetchError("connection_error", _short(err)) from err
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema) as err:
            raise FetchError("invalid_url", str(err)) from err
        except requests.exceptions.ContentDecodingError as err:
            raise FetchError("bad_encoding", _short(err)) from err
        except requests.exceptions.RequestException as err:
            raise FetchError("connection_error", _short(err)) from err

    @staticmethod
    def _check_status(resp: requests.Response) -> None:
        status = resp.status_code
        if 200 <= status < 300:
            return
        code = f"http_{status}"
        detail = f"{status} {resp.reason or ''}".strip()
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise FetchError(code, detail, transient=True, retry_after=retry_after)
        # 404, 403, 410 and the other 4xx (and 3xx left unresolved) will not change.
        raise FetchError(code, detail, transient=False)


def _caused_by(err: BaseException, kind: type[BaseException]) -> bool:
    seen = 0
    current: BaseException | None = err
    while current is not None and seen < 8:
        if isinstance(current, kind) or any(isinstance(a, kind) for a in current.args):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, kind):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _short(err: BaseException) -> str:
    text = str(err)
    return text if len(text) <= 200 else text[:197] + "..."


def fetch_gcs(uri: str) -> bytes:
    """Read a `gs://` object through the shared storage layer (emulator-aware)."""
    from google.api_core import exceptions as gexc

    try:
        return storage.read_bytes(uri)
    except gexc.NotFound as err:
        raise FetchError("gcs_not_found", uri) from err
    except gexc.Forbidden as err:
        raise FetchError("gcs_forbidden", uri) from err
    except ValueError as err:
        raise FetchError("invalid_url", str(err)) from err
    except (gexc.GoogleAPIError, requests.exceptions.RequestException) as err:
        raise FetchError("gcs_error", _short(err)) from err


@dataclass(frozen=True)
class _TarEntry:
    tar: str
    offset: int
    size: int


class ImagesDirSource:
    """Images already on hand: GLDv2 tar shards and/or the unpacked `a/b/c/<id>.jpg` tree.

    The unpacked layout is looked up first (local or `gs://`). Uncompressed `*.tar`
    shards under a local root are indexed once, for the wanted ids only, and members
    are then read with `pread` at their offsets, so worker threads share no file state.
    """

    def __init__(self, root: str, wanted: Iterable[str]) -> None:
        self.root = root
        self._tar_index: dict[str, _TarEntry] = {}
        if not storage.is_remote(root):
            base = Path(root)
            if not base.is_dir():
                raise InputError("images directory does not exist", file=root)
            self._index_tars(sorted(base.rglob("*.tar")), set(wanted))

    def _index_tars(self, shards: list[Path], wanted: set[str]) -> None:
        for number, shard in enumerate(shards, 1):
            found = 0
            try:
                with tarfile.open(shard, mode="r:") as archive:
                    for member in archive:
                        if not member.isfile() or not member.name.endswith(".jpg"):
                            continue
                        image_id = member.name.rsplit("/", 1)[-1][: -len(".jpg")]
                        if image_id in wanted:
                            self._tar_index[image_id] = _TarEntry(
                                str(shard), member.offset_data, member.size
                            )
                            found += 1
            except tarfile.TarError as err:
                raise InputError(
                    f"not a readable uncompressed tar shard: {err}", file=str(shard)
                ) from err
            log.info(
                "indexed tar shard %d/%d %s: %d wanted images", number, len(shards), shard, found
            )

    def fetch(self, image_id: str) -> bytes:
        rel = image_rel_path(image_id).removeprefix(f"{IMAGES_DIR}/")
        path = storage.join(self.root, rel)
        try:
            if storage.is_gcs(path):
                return fetch_gcs(path)
            # Local, s3:// or minio://: a missing one is a FileNotFoundError either way.
            return storage.read_bytes(path)
        except FileNotFoundError:
            pass
        except FetchError as err:
            if err.code != "gcs_not_found":
                raise
        entry = self._tar_index.get(image_id)
        if entry is None:
            raise FetchError("missing_in_images_dir", f"{rel} not in {self.root}")
        fd = os.open(entry.tar, os.O_RDONLY)
        try:
            data = os.pread(fd, entry.size, entry.offset)
        finally:
            os.close(fd)
        if len(data) != entry.size:
            raise FetchError("truncated_body", f"{entry.tar} ends inside {image_id}.jpg")
        return data
