"""`landmarks make-data` and `landmarks serve-data`: the embedded dataset from the shell."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from landmarks.errors import LandmarksError


def register(subparsers: argparse._SubParsersAction) -> None:
    make = subparsers.add_parser(
        "make-data",
        help="generate the embedded synthetic dataset (GLDv2 format)",
        description="Write train.csv, train_label_to_category.csv and images/a/b/c/<id>.jpg.",
    )
    make.add_argument("--out", required=True, type=Path, help="output directory")
    make.add_argument("--classes", type=int, default=6, help="number of landmarks (2-10)")
    make.add_argument("--images-per-class", type=int, default=40, help="valid images per class")
    make.add_argument("--size", type=int, default=128, help="image width and height in pixels")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument(
        "--base-url",
        default=None,
        help="URL prefix written into train.csv (default: http://127.0.0.1:8000)",
    )
    make.add_argument(
        "--no-defects",
        dest="defects",
        action="store_false",
        help="leave out the 404 rows, the truncated JPEG and the duplicate",
    )
    make.set_defaults(func=_make_data)

    serve = subparsers.add_parser(
        "serve-data",
        help="serve a generated dataset's images over HTTP until Ctrl-C",
        description=(
            "Serve DIR/images on 127.0.0.1. If DIR/train.csv points at another address "
            "(for example with --port 0), its URLs are rewritten to this server's."
        ),
    )
    serve.add_argument("dir", type=Path, help="directory written by make-data")
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--no-rewrite",
        dest="rewrite",
        action="store_false",
        help="leave train.csv as it is even if its URLs point elsewhere",
    )
    serve.set_defaults(func=_serve_data)


def _make_data(args: argparse.Namespace) -> int:
    from landmarks.synthetic import DEFAULT_BASE_URL, generate

    out = generate(
        args.out,
        classes=args.classes,
        images_per_class=args.images_per_class,
        size=args.size,
        seed=args.seed,
        base_url=args.base_url or DEFAULT_BASE_URL,
        defects=args.defects,
        progress=True,
    )
    print(f"dataset written to {out} ({out / 'train.csv'})")
    return 0


def _serve_data(args: argparse.Namespace) -> int:
    from landmarks.synthetic import rewrite_base_url, serve

    if not (args.dir / "images").is_dir():
        raise LandmarksError(
            f"{args.dir / 'images'} does not exist: run `landmarks make-data` first"
        )
    stop = threading.Event()
    # Both handlers are installed, not inherited: a process started as a background job
    # of a non-interactive shell (`make test &`) begins with SIGINT ignored, and Python
    # then never raises KeyboardInterrupt, so Ctrl-C's signal or `kill -INT` did nothing.
    # SIGTERM (kill, make's cleanup) ends the server as cleanly as SIGINT does.
    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in stopping}
    try:
        with serve(args.dir, host=args.host, port=args.port) as base_url:
            if args.rewrite and (args.dir / "train.csv").exists():
                changed = rewrite_base_url(args.dir, base_url)
                if changed:
                    print(f"rewrote {changed} URLs in {args.dir / 'train.csv'} to {base_url}")
            print(f"serving {args.dir / 'images'} at {base_url} (Ctrl-C to stop)", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():  # main() may run in a longer-lived process
            signal.signal(sig, handler)
    return 0
