"""Which run and task a TFJob belongs to: its name, its labels, its attempt, its owner.

The name and the `landmarks.io/launch-key` label derive from the KFP run id and task name,
so a retried step finds the job its previous attempt created instead of starting another;
the `landmarks.io/attempt` annotation counts the jobs a step has created.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from landmarks.tfjob.spec import _MAX_NAME, dns1035_name

log = logging.getLogger(__name__)

# Ours: which run and task created a job, so a retried step recognises it.
LAUNCH_KEY_LABEL = "landmarks.io/launch-key"
RUN_ID_LABEL = "landmarks.io/run-id"
TASK_LABEL = "landmarks.io/task"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "landmarks-launcher"
ATTEMPT_ANNOTATION = "landmarks.io/attempt"
_KEY_LENGTH = 10


@dataclass(frozen=True)
class LaunchIdentity:
    """Which run and task a job belongs to; `key` is a short hash of both.

    Attributes:
        run_id: KFP run id (`dsl.PIPELINE_JOB_ID_PLACEHOLDER`).
        task: KFP task name (`dsl.PIPELINE_TASK_NAME_PLACEHOLDER`) or any stable step name.
        key: What names the job and labels it; random when there is no run id.
        deterministic: False when the run id was missing, so a retry cannot find the job.
    """

    run_id: str
    task: str
    key: str
    deterministic: bool

    def job_name(self, prefix: str) -> str:
        """`<prefix>-<key>`: DNS-1035, short enough for `<name>-worker-NN` pods and services."""
        suffix = f"-{self.key}"
        return dns1035_name(prefix, _MAX_NAME - len(suffix)) + suffix

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """The manifest renamed `<its name>-<key>` and labelled with the run and task."""
        out = copy.deepcopy(dict(manifest))
        metadata = out.setdefault("metadata", {})
        metadata["name"] = self.job_name(str(metadata.get("name") or self.task))
        metadata.setdefault("labels", {}).update(
            {
                LAUNCH_KEY_LABEL: self.key,
                RUN_ID_LABEL: _label_value(self.run_id),
                TASK_LABEL: _label_value(self.task),
                MANAGED_BY_LABEL: MANAGED_BY,
            }
        )
        # Label values are capped at 63 characters; the annotations keep the whole ids.
        metadata.setdefault("annotations", {}).update(
            {RUN_ID_LABEL: self.run_id, TASK_LABEL: self.task}
        )
        return out


def launch_identity(run_id: str, task: str) -> LaunchIdentity:
    """The identity of one step of one run; a placeholder KFP did not fill counts as absent."""
    resolved = bool(run_id) and "{{" not in run_id
    if resolved:
        key = hashlib.sha256(f"{run_id}\n{task}".encode()).hexdigest()[:_KEY_LENGTH]
    else:
        # Outside KFP (a direct call, a test): nothing to adopt, so any unique name does.
        log.warning(
            "no KFP run id (got %r): the job gets a random name, so a retried step will "
            "start a new job instead of adopting this one",
            run_id,
        )
        key = uuid.uuid4().hex[:_KEY_LENGTH]
    return LaunchIdentity(run_id if resolved else "", task, key, resolved)


def _label_value(text: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def launch_key(job: Mapping[str, Any]) -> str | None:
    """The launch key a job (the API's JSON or a manifest) is labelled with, if any."""
    return ((job.get("metadata") or {}).get("labels") or {}).get(LAUNCH_KEY_LABEL)


def with_attempt(manifest: Mapping[str, Any], attempt: int) -> dict[str, Any]:
    """The manifest annotated as attempt `attempt` of its step."""
    out = copy.deepcopy(dict(manifest))
    out.setdefault("metadata", {}).setdefault("annotations", {})[ATTEMPT_ANNOTATION] = str(attempt)
    return out


def attempt_of(job: Mapping[str, Any]) -> int:
    """Which attempt of its step a job is (1 for jobs from before the annotation)."""
    text = ((job.get("metadata") or {}).get("annotations") or {}).get(ATTEMPT_ANNOTATION, "1")
    try:
        return max(1, int(text))
    except ValueError:
        return 1


@dataclass(frozen=True)
class OwnerPod:
    """The pod a TFJob belongs to: deleting it (with the KFP run) deletes the job."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        # No blockOwnerDeletion: it would need update on pods/finalizers, and buys nothing.
        return {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}
