"""`landmarks ingest`: the ingest stage as a command."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from landmarks.config import USER_AGENT


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = _defaults()
    parser = subparsers.add_parser(
        "ingest",
        help="download or look up, check and deduplicate the images of a metadata CSV",
        description=(
            "Fetch every image of an id,url,landmark_id CSV (GLDv2 train.csv), check it, "
            "and write OUT/images/a/b/c/<id>.jpg, OUT/manifest.csv and OUT/summary.json. "
            "Rerunning with the same OUT resumes."
        ),
    )
    parser.add_argument("--metadata", required=True, help="id,url,landmark_id CSV (path or gs://)")
    parser.add_argument("--out", required=True, help="output directory (path or gs://)")
    parser.add_argument("--labels", help="landmark_id,category CSV; writes OUT/labels.csv")
    parser.add_argument(
        "--images-dir",
        help="directory of GLDv2 tar shards or a/b/c/<id>.jpg files to read instead of URLs",
    )
    parser.add_argument("--workers", type=int, default=defaults.workers, help="images in flight")
    parser.add_argument(
        "--timeout", type=float, default=defaults.timeout, help="seconds per request"
    )
    parser.add_argument(
        "--retries", type=int, default=defaults.retries, help="retries after transient failures"
    )
    parser.add_argument(
        "--backoff", type=float, default=defaults.backoff, help="first retry wait, seconds"
    )
    parser.add_argument(
        "--max-retry-wait",
        type=float,
        default=defaults.max_retry_wait,
        help="cap on one retry wait, Retry-After included",
    )
    parser.add_argument("--user-agent", default=USER_AGENT, help="User-Agent header")
    parser.add_argument(
        "--min-size", type=int, default=defaults.min_size, help="smallest width and height, px"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=defaults.max_pixels,
        help="largest width x height, checked before decoding",
    )
    parser.add_argument("--limit", type=int, help="only the first N rows")
    parser.add_argument(
        "--flush-seconds",
        type=float,
        default=defaults.flush_seconds,
        help="how often progress is saved for a resume",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _defaults():
    from landmarks.ingest.run import IngestOptions

    return IngestOptions(metadata="", out="")


class _Stopped(KeyboardInterrupt):
    """A stop signal, raised where Ctrl-C would be, so the run saves its progress."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM stop the run the way Ctrl-C does, whatever was inherited.

    A background job of a non-interactive shell starts with SIGINT ignored, and SIGTERM
    (KFP cancelling a run, `kill`) would end the process before the journal's last
    records are written. Only the first signal raises: a second one must not cut the
    saving of progress short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; an embedding caller keeps its own
        return
    raised = False

    def stop(signum: int, frame: object) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise _Stopped(signum)

    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, stop) for sig in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    try:
        with _stop_on_signals():
            return _ingest(args)
    except _Stopped as stopped:
        print(f"stopped by {stopped}: rerun the same command to resume", file=sys.stderr)
        return 128 + stopped.signum  # what a shell reports for death by that signal


def _ingest(args: argparse.Namespace) -> int:
    from landmarks.ingest.run import IngestOptions, run_ingest

    result = run_ingest(
        IngestOptions(
            metadata=args.metadata,
            out=args.out,
            labels=args.labels,
            images_dir=args.images_dir,
            workers=args.workers,
            timeout=args.timeout,
            retries=args.retries,
            backoff=args.backoff,
            max_retry_wait=args.max_retry_wait,
            user_agent=args.user_agent,
            min_size=args.min_size,
            max_pixels=args.max_pixels,
            limit=args.limit,
            progress=not args.no_progress,
            flush_seconds=args.flush_seconds,
        )
    )
    print(json.dumps(result.summary, indent=2, sort_keys=True))
    return 0
