"""A real HTTP server on 127.0.0.1 that misbehaves on request, for tests and benchmarks.

Each path has a script of replies, played in order, the last one repeating: `500` then
`200`, a `429` with `Retry-After`, a reply delayed past the client's timeout, a body cut
short of its Content-Length, an HTML page where an image should be, redirects. Every
request is recorded (path, arrival time, headers) so tests can check what the client did.

In a test::

    with FaultServer() as server:
        server.route("/a.jpg", Reply(status=500), Reply.ok(jpeg))
        url = server.url("/a.jpg")

As a process, for the benchmark: `python -m tests.support.fault_server --latency 0.05
--images 3000` serves `/img/<n>.jpg` (distinct small JPEGs) with 50 ms added to every
request, and prints `PORT <n>` once it listens.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    Attributes:
        status: HTTP status code.
        body: Response body.
        headers: Extra headers (Content-Length is set from the body).
        delay: Seconds to wait before sending anything.
        truncate_to: Send only this many body bytes, with the full Content-Length
            declared, then close the connection.
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_to: int | None = None

    @classmethod
    def ok(cls, body: bytes, content_type: str = "image/jpeg", **kw) -> Reply:
        return cls(200, body, {"Content-Type": content_type}, **kw)

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, b"", {"Location": location})

    @classmethod
    def html(cls, status: int = 200) -> Reply:
        page = b"<!DOCTYPE html><html><body><h1>Not the image you wanted</h1></body></html>"
        return cls(status, page, {"Content-Type": "text/html; charset=utf-8"})


@dataclass(frozen=True)
class Request:
    path: str
    at: float  # time.monotonic() on arrival
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real image hosts do
    # Headers and body leave in one write, and TCP_NODELAY is set, as real servers do:
    # otherwise Nagle's algorithm meets the client's delayed ACK on a kept-alive
    # connection and every response waits about 40 ms more.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        reply = self.server.owner._next(self.path, dict(self.headers.items()))
        delay = self.server.owner.latency + reply.delay
        if delay:
            time.sleep(delay)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.truncate_to is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if reply.truncate_to is None:
                self.wfile.write(reply.body)
            else:
                self.wfile.write(reply.body[: reply.truncate_to])
                self.wfile.flush()
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout passed): nothing to do.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler sleeping past a client timeout must not block exit
    owner: FaultServer

    def handle_error(self, request, client_address) -> None:
        pass  # clients hanging up mid-reply are part of the tests


class FaultServer:
    """Scripted HTTP server on 127.0.0.1 (an ephemeral port unless one is given).

    Args:
        latency: Seconds added to every request (the benchmark's simulated network).
        port: Port to listen on; 0 picks a free one.
    """

    def __init__(self, latency: float = 0.0, port: int = 0) -> None:
        self.latency = latency
        self._routes: dict[str, list[Reply]] = {}
        self._played: dict[str, int] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, *replies: Reply) -> str:
        """Script `path`; returns its full URL."""
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            self._routes[path] = list(replies)
            self._played[path] = 0
        return self.url(path)

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _next(self, path: str, headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(Request(path, time.monotonic(), headers))
            script = self._routes.get(path)
            if script is None:
                return Reply(404, b"not found", {"Content-Type": "text/plain"})
            played = self._played[path]
            self._played[path] = played + 1
            return script[min(played, len(script) - 1)]

    def start(self) -> FaultServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fault-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_jpeg(seed: int, size: int = 64, quality: int = 90) -> bytes:
    """A distinct JPEG per seed (noise, so no two seeds share content)."""
    from PIL import Image

    rng = random.Random(seed)
    pixels = rng.randbytes(size * size * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (size, size), pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="serve /img/<n>.jpg with added latency")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--images", type=int, default=3000, help="how many distinct images")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = FaultServer(latency=args.latency, port=args.port)
    for n in range(args.images):
        server.route(f"/img/{n}.jpg", Reply.ok(make_jpeg(n, args.size)))
    print(f"PORT {server.port}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
