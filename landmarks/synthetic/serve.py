"""Serve the embedded dataset's images over HTTP on 127.0.0.1, as a stand-in for Wikimedia.

The URLs in train.csv carry the server's address, so a dataset generated for one port is
served on another only after `rewrite_base_url`. Alternatively start the server first
and generate with the address it yields (the directory may not exist yet):

    with serve(root) as base_url:
        generate(root, base_url=base_url)
        ...  # ingest downloads from base_url
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from landmarks import storage
from landmarks.errors import InputError
from landmarks.synthetic.generate import IMAGES_DIR, TRAIN_CSV, image_url

log = logging.getLogger(__name__)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files without a log line per request (ingest fetches thousands)."""

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


@contextmanager
def serve(root: str | Path, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `root/images` at `http://host:port/` and yield that base URL (no trailing slash).

    Port 0 picks a free port. Each request runs in its own thread, so concurrent downloads
    work. The server stops when the block exits.
    """
    directory = (Path(root) / IMAGES_DIR).resolve()
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="synthetic-http", daemon=True
    )
    thread.start()
    base_url = f"http://{host}:{server.server_address[1]}"
    log.info("serving %s at %s", directory, base_url)
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def rewrite_base_url(root: str | Path, base_url: str) -> int:
    """Point every URL in `root/train.csv` at `base_url`; return how many rows changed.

    The file is replaced atomically. Raises InputError on a row without an id.
    """
    path = Path(root) / TRAIN_CSV
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if "id" not in fields or "url" not in fields:
            raise InputError("needs columns id and url", file=str(path), row=1)
        rows = list(reader)
    changed = 0
    for line, row in enumerate(rows, start=2):
        if not row.get("id"):
            raise InputError("empty id", file=str(path), row=line, field="id")
        url = image_url(base_url, row["id"])
        if row["url"] != url:
            row["url"] = url
            changed += 1
    if changed:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        storage.write_text(str(path), out.getvalue(), content_type="text/csv")
    return changed
