"""`landmarks tfjob`: write a training TFJob manifest, run one as local processes or on a cluster.

    landmarks tfjob render --name lenet --workers 2 -- --stage stage1 --data SPLIT --out MODEL
    landmarks tfjob run-local job.yaml --timeout 3600
    landmarks tfjob run-cluster job.yaml --namespace landmarks-training --run-id R --task T

`run-local` and `run-cluster` exit 0 when the job succeeded (per the operator's success
policy) and 1 when it failed or timed out; every replica's lines are prefixed `[worker-1] `.
`run-cluster` uses $KUBECONFIG (or the pod's service account), deletes the job when it times
out (default 24 h), when a replica stays Pending (20 min) or cannot start its container
(3 min), or when it is stopped: SIGTERM exits 143, as a process killed by it would, after
the job was deleted. With `--run-id`/`--task` it adopts the job an earlier run of the same
command created, and replaces that job if it Failed (up to `--max-attempts` jobs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from landmarks import storage
from landmarks.config import TRAINER_IMAGE
from landmarks.errors import InputError
from landmarks.tfjob.launcher import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PENDING_TIMEOUT_SECONDS,
    DEFAULT_START_ERROR_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
)
from landmarks.tfjob.spec import TRAINER_ENV, TFJobSpec


def load_manifest(path: str) -> dict[str, Any]:
    """The first TFJob document of a YAML (or JSON) file, local or gs://."""
    try:
        docs = [d for d in yaml.safe_load_all(storage.read_text(path)) if d]
    except FileNotFoundError:
        raise InputError("no such file", file=path) from None
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {err}", file=path) from None
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "TFJob":
            return doc
    raise InputError("no document of kind TFJob", file=path)


def _render(args: argparse.Namespace) -> int:
    trainer_args = list(args.trainer_args)
    if trainer_args and trainer_args[0] == "--":
        trainer_args = trainer_args[1:]
    spec = TFJobSpec(
        name=args.name,
        namespace=args.namespace,
        image=args.image,
        args=trainer_args,
        workers=args.workers,
        chief=args.chief,
        gpus_per_worker=args.gpus,
        cpu=args.cpu,
        memory=args.memory,
        backoff_limit=args.backoff_limit,
        active_deadline_seconds=args.deadline,
        env=dict(TRAINER_ENV),
    )
    text = yaml.safe_dump(spec.to_manifest(), sort_keys=False)
    if args.output:
        storage.write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _run_local(args: argparse.Namespace) -> int:
    from landmarks.tfjob.local_executor import run_local

    manifest = load_manifest(args.manifest)
    result = run_local(
        manifest,
        timeout=args.timeout,
        grace_seconds=args.grace,
        cwd=Path.cwd(),
    )
    return 0 if result.succeeded else 1


def _json_option(text: str | None, name: str) -> Any:
    import json

    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON: {err}", field=name) from None


def _run_cluster(args: argparse.Namespace) -> int:
    from landmarks.tfjob.launcher import Cancelled, launch_identity, run_on_cluster
    from landmarks.tfjob.placement import Placement

    manifest = load_manifest(args.manifest)
    if args.run_id or args.task:
        task = args.task or manifest.get("metadata", {}).get("name", "tfjob")
        manifest = launch_identity(args.run_id, task).apply(manifest)
    placement = Placement(
        node_selector=_json_option(args.node_selector, "--node-selector"),
        tolerations=_json_option(args.tolerations, "--tolerations"),
    ).with_gpus(args.gpus)
    try:
        result = run_on_cluster(
            manifest,
            timeout=args.timeout,
            namespace=args.namespace,
            kubeconfig=args.kubeconfig,
            placement=placement,
            owner="auto" if args.owner else None,
            stream_logs=not args.no_logs,
            pending_timeout=args.pending_timeout,
            start_error_timeout=args.start_error_timeout,
            max_attempts=args.max_attempts,
        )
    except Cancelled as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0 if result.succeeded else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tfjob",
        help="render a training TFJob, or run a TFJob manifest as local processes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_commands(parser)


def add_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tfjob_command", required=True, metavar="ACTION")

    render = sub.add_parser("render", help="print a TFJob that runs python -m landmarks.train")
    render.add_argument("--name", required=True, help="job name (DNS-1035)")
    render.add_argument("--namespace", default="default")
    render.add_argument("--image", default=TRAINER_IMAGE)
    render.add_argument("--workers", type=int, default=1)
    render.add_argument("--chief", action="store_true", help="add a Chief replica")
    render.add_argument("--gpus", type=int, default=0, help="GPUs per replica")
    render.add_argument("--cpu", help="CPU request per replica, e.g. 4")
    render.add_argument("--memory", help="memory request per replica, e.g. 8Gi")
    render.add_argument("--backoff-limit", type=int, default=3)
    render.add_argument("--deadline", type=int, help="activeDeadlineSeconds")
    render.add_argument("-o", "--output", help="write here instead of stdout (local or gs://)")
    render.add_argument(
        "trainer_args", nargs=argparse.REMAINDER, help="-- then the trainer's arguments"
    )
    render.set_defaults(func=_render)

    run = sub.add_parser("run-local", help="run a TFJob manifest as local processes")
    run.add_argument("manifest", help="TFJob YAML file")
    run.add_argument("--timeout", type=float, help="stop every replica after this many seconds")
    run.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds the other replicas get to finish once the job has succeeded",
    )
    run.set_defaults(func=_run_local)

    cluster = sub.add_parser(
        "run-cluster", help="submit a TFJob manifest to a cluster and follow it to the end"
    )
    cluster.add_argument("manifest", help="TFJob YAML file")
    cluster.add_argument("--namespace", help="training namespace (default: the manifest's)")
    cluster.add_argument("--kubeconfig", help="default: in-cluster, else $KUBECONFIG")
    cluster.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help="delete the job after this many seconds (default %(default)g; 0: no limit)",
    )
    cluster.add_argument(
        "--pending-timeout",
        type=float,
        default=DEFAULT_PENDING_TIMEOUT_SECONDS,
        help="fail when a replica stays Pending this long (default %(default)g; 0: no limit)",
    )
    cluster.add_argument(
        "--start-error-timeout",
        type=float,
        default=DEFAULT_START_ERROR_TIMEOUT_SECONDS,
        help="fail when a container cannot start (image pull, missing Secret) this long "
        "(default %(default)g; 0: no limit)",
    )
    cluster.add_argument(
        "--max-attempts",
        type=int,
        default=DEFAULT_MAX_ATTEMPTS,
        help="jobs one --run-id/--task may create: a Failed one is replaced until this many "
        "failed (default %(default)d)",
    )
    cluster.add_argument("--run-id", default="", help="name the job after this run and --task")
    cluster.add_argument("--task", default="", help="step name (default: the manifest's name)")
    cluster.add_argument("--gpus", type=int, help="GPUs per replica (default: cluster defaults)")
    cluster.add_argument("--node-selector", help='JSON object, e.g. {"pool": "gpu"}')
    cluster.add_argument("--tolerations", help="JSON array of tolerations")
    cluster.add_argument(
        "--no-owner",
        dest="owner",
        action="store_false",
        help="do not make this pod (when run in one) the job's owner",
    )
    cluster.add_argument("--no-logs", action="store_true", help="do not stream replica logs")
    cluster.set_defaults(func=_run_cluster)


def main(argv: list[str] | None = None) -> int:
    import logging

    from landmarks.errors import LandmarksError

    parser = argparse.ArgumentParser(
        prog="python -m landmarks.tfjob",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_commands(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except LandmarksError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
