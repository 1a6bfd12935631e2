"""`run_on_cluster`: one TFJob on a cluster, from creation (or adoption) to how it ended.

This module puts the pieces together: the manifest as it will be created (`launch_manifest`),
its creation or adoption (`submit`), the watch on it (`follow`), its pods and logs
(`pod_logs`), and the `JobResult` that says how it ended (`landmarks.tfjob.results`); it
deletes the job when the timeout passes, a replica is stuck, or the launcher is cancelled.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

from landmarks.errors import InputError
from landmarks.tfjob.launcher.follow import (
    Cancelled,
    DeadlinePassed,
    Interrupts,
    JobWatch,
    signals_raise,
)
from landmarks.tfjob.launcher.identity import LAUNCH_KEY_LABEL, OwnerPod
from landmarks.tfjob.launcher.k8s_api import (
    TFJobApi,
    load_api_client,
    owner_from_environment,
    read_training_defaults,
)
from landmarks.tfjob.launcher.pod_problems import ReplicaStuck
from landmarks.tfjob.launcher.replica_pods import ReplicaPods
from landmarks.tfjob.launcher.submit import submit
from landmarks.tfjob.placement import Placement, apply_cluster_settings
from landmarks.tfjob.results import JobResult, ReplicaOutcome, conditions, terminal_condition
from landmarks.tfjob.spec import KIND

# The training namespace of the landmarks-platform chart (values namespace.name).
DEFAULT_NAMESPACE = "landmarks-training"
# A finished job stays a day for inspection (and for a retried step to find), then goes.
DEFAULT_TTL_SECONDS = 24 * 3600
# How long a step may train before its job is deleted and the step fails. Finite, so that a
# job that never ends (a hung collective, a replica lost without the job failing) gives its
# GPUs back; a day, as Kubeflow's own TFJob launcher component (1440 minutes). A step that
# needs longer says so (the pipeline's train_timeout_s); `timeout=None` or 0 disables it.
DEFAULT_TIMEOUT_SECONDS = 24 * 3600
# How long a replica may stay Pending: enough for the cluster autoscaler to add a GPU node
# (several minutes on GKE, the driver installation included) and to pull the trainer image
# onto it. An unschedulable replica on a cluster that cannot grow fails the step after this.
DEFAULT_PENDING_TIMEOUT_SECONDS = 20 * 60
# How long a container may fail to start (its image cannot be pulled, a Secret or ConfigMap
# it names is missing): these rarely mend themselves, so a few kubelet retries (back-off
# 10 s, 20 s, 40 s, 80 s) and then the step fails, instead of after `pending_timeout`.
DEFAULT_START_ERROR_TIMEOUT_SECONDS = 3 * 60
# Jobs one step may create: a retried step replaces its Failed job until this many failed.
DEFAULT_MAX_ATTEMPTS = 3
_LOG_DRAIN_SECONDS = 5.0  # at most this long for the last lines once the job ended


def launch_manifest(
    manifest: Mapping[str, Any],
    *,
    namespace: str,
    defaults: Mapping[str, Any] | None,
    placement: Placement | None,
    owner: OwnerPod | None,
) -> dict[str, Any]:
    """The TFJob exactly as the launcher creates it, from what it read from the cluster.

    The manifest in `namespace`, with the chart's `defaults` (None: none installed) and the
    task's placement laid over it, owned by `owner` (which must be in that namespace).
    """
    out = copy.deepcopy(dict(manifest))
    out.setdefault("metadata", {})["namespace"] = namespace
    out = apply_cluster_settings(out, defaults, placement)
    if owner is not None:
        if owner.namespace != namespace:
            raise InputError(
                f"pod {owner.namespace}/{owner.name} cannot own a TFJob in namespace "
                f"{namespace}: Kubernetes forbids owners in another namespace",
                field="owner",
            )
        out["metadata"]["ownerReferences"] = [owner.reference()]
    return out


class ClusterTFJob:
    """One TFJob on a cluster, from creation (or adoption) to its end; see `run_on_cluster`."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        *,
        api_client: Any,
        namespace: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        output: TextIO | None = None,
        placement: Placement | None = None,
        owner: OwnerPod | str | None = "auto",
        poll_seconds: float = 2.0,
        stream_logs: bool = True,
        pending_timeout: float | None = DEFAULT_PENDING_TIMEOUT_SECONDS,
        start_error_timeout: float | None = DEFAULT_START_ERROR_TIMEOUT_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        if manifest.get("kind") != KIND:
            raise InputError(f"not a TFJob manifest (kind {manifest.get('kind')!r})", field="kind")
        metadata = manifest.get("metadata") or {}
        self.namespace = namespace or metadata.get("namespace") or "default"
        self.name = str(metadata.get("name") or "")
        if not self.name:
            raise InputError("the TFJob has no name", field="metadata.name")
        if max_attempts < 1:
            raise InputError(f"must be at least 1 (got {max_attempts})", field="max_attempts")
        self.api = TFJobApi(api_client, self.namespace, self.name, poll_seconds=poll_seconds)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.attempt = 1
        self.output = output or sys.stdout
        self.key = (metadata.get("labels") or {}).get(LAUNCH_KEY_LABEL)
        self._placement = placement
        self._owner = owner
        self._manifest = copy.deepcopy(dict(manifest))
        self._lock = threading.Lock()
        self._seen_conditions: set[tuple[str, str, str]] = set()
        self._interrupts = Interrupts()
        self._out_of_attempts = False
        self.pods = ReplicaPods(
            self.api,
            emit=self._emit,
            say=self._say,
            poll_seconds=poll_seconds,
            stream_logs=stream_logs,
            pending_timeout=pending_timeout,
            start_error_timeout=start_error_timeout,
            on_stuck=lambda _: self._watch.interrupt(),
        )
        self._watch = JobWatch(
            self.api, poll_seconds=poll_seconds, report=self._report, stuck=lambda: self.pods.stuck
        )

    @property
    def uid(self) -> str | None:
        """The uid of the job this launcher created or adopted (None: none yet)."""
        return self.api.uid

    # -- output --------------------------------------------------------------------------

    def _emit(self, line: str) -> None:
        with self._lock:
            self.output.write(line if line.endswith("\n") else line + "\n")
            self.output.flush()

    def _say(self, message: str) -> None:
        self._emit(f"[launcher] {self.namespace}/{self.name}: {message}")

    def _report(self, job: Mapping[str, Any]) -> None:
        for condition in conditions(job):
            if condition.get("status") != "True":
                continue
            seen = (
                str(condition.get("type")),
                str(condition.get("reason")),
                str(condition.get("lastTransitionTime")),
            )
            if seen not in self._seen_conditions:
                self._seen_conditions.add(seen)
                self._say(f"{seen[0]} ({seen[1]}): {condition.get('message', '')}")

    # -- the steps -----------------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        """The manifest as it will be created: namespace, cluster defaults, placement, owner."""
        owner = self._owner
        if owner == "auto":
            owner = owner_from_environment(self.api.core, self.namespace)
        self._owner = owner
        return launch_manifest(
            self._manifest,
            namespace=self.namespace,
            defaults=read_training_defaults(self.api.core, self.namespace),
            placement=self._placement,
            owner=owner if isinstance(owner, OwnerPod) else None,
        )

    def submit(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create the job, or adopt ours (`landmarks.tfjob.launcher.submit`); the API's job."""
        submitted = submit(
            self.api,
            manifest,
            key=self.key,
            owner=self._owner if isinstance(self._owner, OwnerPod) else None,
            max_attempts=self.max_attempts,
            say=self._say,
            hold_signals=self._interrupts.deferred,
        )
        self.attempt = submitted.attempt
        self._out_of_attempts = submitted.out_of_attempts
        return submitted.job

    def wait(
        self, job: Mapping[str, Any], deadline: float | None, resource_version: str | None = None
    ) -> dict[str, Any] | None:
        """Follow the job until it ends (returned) or is deleted (None); see `JobWatch`."""
        self.api.uid = job["metadata"]["uid"]
        return self._watch.follow(job, deadline, resource_version)

    def delete(self) -> None:
        """Delete the job (its pods and services follow through the garbage collector)."""
        if self.api.delete():
            self._say("deleted")

    def run(self) -> JobResult:
        """Submit (or adopt) the job and follow it; see `run_on_cluster`."""
        start = time.monotonic()
        deadline = None if not self.timeout else start + self.timeout
        manifest = self.build()
        with signals_raise() as interrupts:
            self._interrupts = interrupts
            drain = 0.0
            try:
                job = self.submit(manifest)
                self.api.uid = job["metadata"]["uid"]
                self.pods.start()
                final = self.wait(job, deadline)
                drain = _LOG_DRAIN_SECONDS
            except DeadlinePassed:
                why = self._why()
                self.delete()
                return self._result(
                    start,
                    False,
                    "DeadlineExceeded",
                    f"still running after the launcher's timeout of {self.timeout:g}s; the "
                    "TFJob was deleted" + (f" ({why})" if why else ""),
                    None,
                )
            except ReplicaStuck as stuck:
                self.delete()
                pod = f"; pod {self.namespace}/{stuck.pod}" if stuck.pod else ""
                if stuck.problem.start_error:
                    what = "could not start its container"
                else:
                    what = "stayed Pending"
                return self._result(
                    start,
                    False,
                    stuck.problem.reason,
                    f"{stuck.label} {what} for {stuck.seconds:.0f}s (the launcher waits "
                    f"{stuck.bound:g}s{pod}): {stuck.problem}; the TFJob was deleted",
                    None,
                )
            except BaseException as err:
                # Cancelled, Ctrl-C, or the launcher itself failing: leave no job behind
                # (none was created, or adopted, where there is no uid).
                if self.uid:
                    with contextlib.suppress(Exception):  # the original error matters more
                        self.delete()
                if isinstance(err, Cancelled):
                    done = f"; TFJob {self.namespace}/{self.name} deleted" if self.uid else ""
                    raise Cancelled(f"{err}{done}", err.signum) from None
                raise
            finally:
                self.pods.stop(drain)
        if final is None:
            return self._result(
                start,
                False,
                "Deleted",
                "the TFJob was deleted before it finished (its owner was deleted, or "
                "someone deleted it)",
                None,
            )
        condition = terminal_condition(final) or {}
        ok = condition.get("type") == "Succeeded"
        message = str(condition.get("message", ""))
        if not ok:
            why = self._why(message)
            message += f" ({why})" if why else ""
            if self._out_of_attempts:
                message += (
                    f"; attempt {self.attempt} of {self.max_attempts}, none left: the job "
                    "is not created again"
                )
        return self._result(start, ok, str(condition.get("reason", "")), message, final)

    # -- the result ----------------------------------------------------------------------

    def outcome(self, job: Mapping[str, Any] | None) -> list[ReplicaOutcome]:
        """Every replica with its last exit code (None: stopped or never ended) and restarts."""
        exits: dict[str, int] = {}
        for event in self.api.events():
            found = re.search(r"Pod: \S+?\.(\S+) exited with code (\d+)", event.message or "")
            if found:
                exits[found.group(1)] = int(found.group(2))
        specs = (job or self._manifest).get("spec", {}).get("tfReplicaSpecs") or {}
        return self.pods.outcomes(specs, exits)

    def _why(self, known: str = "") -> str:
        """Events and pod states that explain a failure or a wait (beyond `known`)."""
        notes = []
        for event in self.api.events():
            if str(event.message) in known:
                continue
            if event.type == "Warning" or (
                event.reason == "ExitedWithCode" and not str(event.message).endswith("code 0")
            ):
                note = f"{event.reason}: {event.message}"
                if note not in notes:
                    notes.append(note)
        notes.extend(self.pods.unscheduled())
        return "; ".join(notes[-5:])

    def _result(
        self, start: float, ok: bool, reason: str, message: str, job: Mapping[str, Any] | None
    ) -> JobResult:
        replicas = self.outcome(job)
        if not ok:
            for replica in replicas:
                if replica.exit_code and replica.tail:
                    lines = "\n".join(list(replica.tail)[-5:])
                    message += (
                        f"\n{replica.label} exited {replica.exit_code}; its last lines:\n{lines}"
                    )
        result = JobResult(ok, reason, message, replicas, time.monotonic() - start)
        self._say(result.summary())
        return result


def run_on_cluster(
    manifest: Mapping[str, Any],
    *,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    output: TextIO | None = None,
    namespace: str | None = None,
    api_client: Any = None,
    kubeconfig: str | os.PathLike[str] | None = None,
    placement: Placement | None = None,
    owner: OwnerPod | str | None = "auto",
    poll_seconds: float = 2.0,
    stream_logs: bool = True,
    pending_timeout: float | None = DEFAULT_PENDING_TIMEOUT_SECONDS,
    start_error_timeout: float | None = DEFAULT_START_ERROR_TIMEOUT_SECONDS,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> JobResult:
    """Run a TFJob on the cluster and return how it ended (like `run_local`).

    Args:
        manifest: The TFJob (from `landmarks.tfjob.spec`); a `landmarks.io/launch-key`
            label (`launch_identity(...).apply`) lets a retried launcher adopt it.
        timeout: Delete the job and return DeadlineExceeded after this many seconds
            (`DEFAULT_TIMEOUT_SECONDS`; None or 0: no limit).
        output: Where the launcher's and the replicas' lines go (default stdout).
        namespace: The training namespace (default: the manifest's).
        api_client: A `kubernetes.client.ApiClient`; default `load_api_client(kubeconfig)`.
        kubeconfig: A kubeconfig file, when no api_client is given.
        placement: The task's GPU, node selector, tolerations, ... (KFP's TaskConfig).
        owner: The pod that owns the job; "auto": the launcher's own pod when it may.
        poll_seconds: How often pods are listed (logs, placement) and errors retried.
        stream_logs: Print every replica's log.
        pending_timeout: Delete the job and fail (reason `Unschedulable`, ...) when a
            replica stays Pending this long (None or 0: no limit), counted from when this
            launcher first saw the pod Pending (a retried launcher counts afresh).
        start_error_timeout: The same, sooner, for a container that cannot start
            (`ImagePullBackOff`, `CreateContainerConfigError`, ...).
        max_attempts: Jobs this step may create: a Failed job found by a retried step is
            replaced while fewer than this many attempts have failed.

    Raises:
        Cancelled: SIGTERM or Ctrl-C; the job was deleted first.
        LandmarksError: The API refused something (the message names it), or a job of that
            name exists that this step did not create.
    """
    if api_client is None:
        api_client = load_api_client(kubeconfig)
    return ClusterTFJob(
        manifest,
        api_client=api_client,
        namespace=namespace,
        timeout=timeout,
        output=output,
        placement=placement,
        owner=owner,
        poll_seconds=poll_seconds,
        stream_logs=stream_logs,
        pending_timeout=pending_timeout,
        start_error_timeout=start_error_timeout,
        max_attempts=max_attempts,
    ).run()
