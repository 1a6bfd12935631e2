"""Split throughput onto gs://: one copy at a time against the pool split uses.

Run: `.venv/bin/python -m benchmarks.bench_split [--images 600] [--latency 0.02]`.

An ingest directory of distinct small JPEGs on local disk is split onto a real
`gcp-storage-emulator`, reached through a loopback proxy that adds `--latency` seconds
to every request, as the round trip to real GCS does (the bare emulator answers in about
a millisecond and is CPU-bound, so there concurrency can only tie). Each measurement gets
a fresh emulator, because the in-memory emulator slows down as it fills. Then the same
split onto local disk, where split hard-links instead of copying, and the synthetic
generator. Prints images/second and ratios. A benchmark, not a test: nothing here fails.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from landmarks import storage
from landmarks.split import SplitOptions, run_split
from landmarks.split.write import COPY_WORKERS
from landmarks.synthetic import generate
from tests.split.ingest_dir import make_ingest
from tests.support.net import free_port, wait_for_port

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def _proxy_handler(upstream: int, latency: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(latency)
            conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            conn.close()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def _gcs(latency: float) -> Iterator[str]:
    """A fresh emulator behind a latency proxy; yields a new bucket's gs:// URI."""
    port = free_port()
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    emulator = subprocess.Popen(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(port, latency))
    proxy.daemon_threads = True
    thread = threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{proxy.server_address[1]}"
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "landmarks-bench")
        storage._local.__dict__.pop("client", None)  # this thread's client knew the old host
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        storage.client().create_bucket(bucket)
        yield f"gs://{bucket}"
    finally:
        proxy.shutdown()
        proxy.server_close()
        emulator.terminate()
        emulator.wait(timeout=10)


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added per request")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        per_class = max(3, args.images // 10)
        ingest = make_ingest(work / "ingest", {lm: per_class for lm in range(1, 11)})
        n = per_class * 10

        def split(out: str, workers: int = COPY_WORKERS) -> None:
            run_split(SplitOptions(ingest, out, progress=False, workers=workers))

        seconds = {}
        for workers in (1, COPY_WORKERS):
            with _gcs(args.latency) as bucket:
                seconds[workers] = _timed(lambda b=bucket, w=workers: split(f"{b}/split", w))
        local = _timed(lambda: split(str(work / "split")))
        synth = _timed(lambda: generate(work / "synthetic", classes=6, images_per_class=50))

    one, pool = seconds[1], seconds[COPY_WORKERS]
    print(f"split of {n} images, local disk -> gs:// (emulator, +{args.latency * 1000:.0f} ms)")
    print(f"  1 worker:   {n / one:8.1f} img/s")
    print(f"  {COPY_WORKERS} workers:  {n / pool:8.1f} img/s   ratio {one / pool:.2f}x")
    print(f"split of {n} images, local disk -> local disk (hard links)")
    print(f"  {n / local:8.0f} img/s")
    print(f"synthetic generation at 128x128: {300 / synth:.0f} img/s (300 images, {synth:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
