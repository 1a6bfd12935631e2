"""`landmarks ingest`: the ingest stage as a command."""

from __future__ import annotations

import argparse
import json

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


def run(args: argparse.Namespace) -> int:
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
