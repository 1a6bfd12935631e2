"""`landmarks <stage> ...`: every pipeline stage as a command, outside KFP too.

Each stage module exposes `register(subparsers)`, adding its own subcommand with a
`func` default that takes the parsed arguments and returns an exit code. Modules are
imported lazily so `landmarks ingest` does not pay for importing TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from landmarks import __version__
from landmarks.errors import LandmarksError

# Subcommand modules, in pipeline order.
STAGE_MODULES = (
    "landmarks.synthetic.cli",
    "landmarks.ingest.cli",
    "landmarks.split.cli",
    "landmarks.train.cli",
    "landmarks.tfjob.cli",
    "landmarks.evaluate.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="landmarks", description=__doc__)
    parser.add_argument("--version", action="version", version=f"landmarks {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in STAGE_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except LandmarksError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Stages save their progress before the interrupt reaches here.
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
