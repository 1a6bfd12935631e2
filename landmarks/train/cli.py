"""`landmarks train` / `python -m landmarks.train`: the TFJob replica entry point.

Exit codes follow the training-operator's `restartPolicy: ExitCode` contract:
0 success; 2 bad input (no restart helps); 1 any other error; 138 a lost peer (retryable:
the operator recreates the pod, and the run resumes from its last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from typing import Any

import landmarks.train  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from landmarks.errors import LandmarksError
from landmarks.train.recipe import PROFILES, STAGES, parse_overrides, resolve_config
from landmarks.train.tf_config import (
    EXIT_BAD_INPUT,
    EXIT_ERROR,
    EXIT_RETRYABLE,
    Replica,
    current_replica,
)

log = logging.getLogger("landmarks.train")

# Markers of a collective aborted because a peer went away: the coordination service's
# heartbeat ("stopped sending heartbeats"), a closed socket mid-transfer, a failed
# connection while a restarted peer rejoins.
_PEER_LOST_MARKERS = (
    "collective ops is aborted",
    "stopped sending heartbeats",
    "socket closed",
    "failed to connect",
    "connection reset",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", required=True, choices=sorted(STAGES), help="stage preset")
    parser.add_argument("--data", help="split directory (local, gs://, s3:// or minio://)")
    parser.add_argument("--out", help="model directory to write (local, gs://, s3:// or minio://)")
    parser.add_argument(
        "--checkpoint-dir",
        help="per-epoch checkpoints, shared by all workers (default: OUT/.checkpoint); "
        "a restarted run resumes from here",
    )
    parser.add_argument(
        "--weights",
        help="imagenet, none, or the base model's no-top weights file (local path or gs://, "
        "s3://, minio:// URI)",
    )
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), help="shrink the run (demo, tiny) by name"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting, e.g. --set epochs=5 --set frozen_blocks=conv1,conv2",
    )
    parser.add_argument(
        "--stage-dir",
        help="local directory where a split TensorFlow cannot read in place (minio://, s3://, "
        "emulated gs://) is staged",
    )
    parser.add_argument(
        "--show-config",
        action="store_true",
        help="print the resolved configuration as JSON and exit",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one stage (LeNet-5, VGG16, ResNet50), alone or as a TFJob worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def _peer_lost(err: BaseException) -> bool:
    import tensorflow as tf

    if isinstance(
        err,
        tf.errors.UnavailableError
        | tf.errors.AbortedError
        | tf.errors.DeadlineExceededError
        | tf.errors.CancelledError,
    ):
        return True
    text = str(err).lower()
    return isinstance(err, tf.errors.OpError) and any(m in text for m in _PEER_LOST_MARKERS)


def _message(err: BaseException) -> str:
    """The error's text; TensorFlow's graph-function and op-name decorations removed."""
    if "tensorflow" in type(err).__module__:
        from landmarks.train.tfdata import op_reason

        return op_reason(str(err))
    return str(err)


def _execute(args: argparse.Namespace, replica: Replica) -> int:
    overrides = parse_overrides(args.overrides)
    if args.weights:
        overrides["weights"] = args.weights
    cfg = resolve_config(args.stage, args.profile, overrides)
    if args.show_config:
        print(json.dumps(cfg.to_dict(), indent=1))
        return 0
    if not args.data or not args.out:
        raise LandmarksError("--data and --out are required (or pass --show-config)")
    from landmarks.train.trainer import train

    train(
        cfg,
        args.data,
        args.out,
        checkpoint_dir=args.checkpoint_dir,
        stage_dir=args.stage_dir,
        replica=replica,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run a training and map its outcome to the operator's exit-code contract.

    In a multi-worker run the process leaves through `os._exit`: after a collective has
    failed, TensorFlow's teardown can wait forever on threads that wait for the lost peer.
    """
    # TensorFlow logs every collective at INFO; our own lines say what matters.
    for noisy in ("tensorflow", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    replica = Replica()
    code = EXIT_ERROR
    try:
        replica = current_replica()
        code = _execute(args, replica)
    except LandmarksError as err:
        print(f"error: {err}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except Exception as err:
        if replica.distributed and _peer_lost(err):
            print(
                f"error: lost contact with a peer worker ({type(err).__name__}: "
                f"{_message(err)}); exiting {EXIT_RETRYABLE} so the "
                "operator restarts this replica, which resumes from the last checkpoint",
                file=sys.stderr,
            )
            code = EXIT_RETRYABLE
        else:
            traceback.print_exc()
            print(f"error: {type(err).__name__}: {_message(err)}", file=sys.stderr)
            code = EXIT_ERROR
    if replica.distributed:
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m landmarks.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run(args)
