"""The replica's place in a TFJob: `TF_CONFIG` as the training-operator writes it.

The operator injects `TF_CONFIG` into the container named `tensorflow` when a job has
more than one replica:
`{"cluster": {"chief": [...], "worker": [...]}, "task": {"type": "worker", "index": 1},
"environment": "cloud"}`. Without it (or with a one-replica cluster) the trainer is a
single process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from landmarks.errors import LandmarksError

# Exit code for a lost peer. The operator's `restartPolicy: ExitCode` restarts a replica
# whose code is 128 or above and fails the job on 1..127; 138 (128 + SIGUSR1) is the
# code the operator documents as "user-defined retryable".
EXIT_RETRYABLE = 138
EXIT_BAD_INPUT = 2
EXIT_ERROR = 1

_SUPPORTED = ("chief", "worker")


@dataclass(frozen=True)
class Replica:
    """This process's task in the cluster, and the cluster's size."""

    task_type: str = "worker"
    task_index: int = 0
    num_workers: int = 1  # chief + workers: every one trains
    has_chief: bool = False

    @property
    def distributed(self) -> bool:
        return self.num_workers > 1

    @property
    def is_chief(self) -> bool:
        """The replica whose outputs are kept: the chief, else worker 0."""
        if self.has_chief:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def label(self) -> str:
        return f"{self.task_type}-{self.task_index}"


def parse_tf_config(text: str | None) -> Replica:
    """The replica described by a `TF_CONFIG` value (None or empty: a single process)."""
    if not text or not text.strip():
        return Replica()
    try:
        config: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise LandmarksError(f"TF_CONFIG is not valid JSON: {err}") from None
    if not isinstance(config, Mapping):
        raise LandmarksError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster = config.get("cluster") or {}
    task = config.get("task") or {}
    if not isinstance(cluster, Mapping) or not isinstance(task, Mapping):
        raise LandmarksError("TF_CONFIG 'cluster' and 'task' must be JSON objects")
    other = sorted(set(cluster) - set(_SUPPORTED))
    if other:
        raise LandmarksError(
            f"TF_CONFIG has {', '.join(other)} replicas; the trainer runs synchronous "
            "all-reduce training (MultiWorkerMirroredStrategy): use Worker replicas and at "
            "most one Chief"
        )
    chiefs = list(cluster.get("chief") or [])
    workers = list(cluster.get("worker") or [])
    if len(chiefs) > 1:
        raise LandmarksError(f"TF_CONFIG lists {len(chiefs)} chiefs; at most one is allowed")
    task_type = str(task.get("type") or "worker").lower()
    try:
        task_index = int(task.get("index", 0))
    except (TypeError, ValueError):
        raise LandmarksError(f"TF_CONFIG task index is not an integer: {task!r}") from None
    members = {"chief": chiefs, "worker": workers}.get(task_type)
    if members is None:
        raise LandmarksError(f"TF_CONFIG task type {task_type!r} is not chief or worker")
    if (chiefs or workers) and not 0 <= task_index < len(members):
        raise LandmarksError(
            f"TF_CONFIG task {task_type}:{task_index} is not in the cluster "
            f"({len(members)} {task_type} addresses)"
        )
    return Replica(task_type, task_index, max(1, len(chiefs) + len(workers)), bool(chiefs))


def current_replica(env: Mapping[str, str] | None = None) -> Replica:
    return parse_tf_config((env if env is not None else os.environ).get("TF_CONFIG"))


def make_strategy(replica: Replica) -> Any:
    """The distribution strategy; call it before any other TensorFlow op.

    MultiWorkerMirroredStrategy configures collective ops at program start-up and then
    blocks until every worker has joined, so it must come first.
    """
    import tensorflow as tf

    if replica.distributed:
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()
