"""Run a TFJob on a Kubernetes cluster and follow it to the end: the cluster executor.

`run_on_cluster(manifest)` is what a training step of the pipeline runs in its (CPU-only)
KFP pod. It

1. lays the cluster's defaults (ConfigMap `landmarks-training-defaults` in the training
   namespace) and the task's placement (KFP `TaskConfig`) over the manifest
   (`landmarks.tfjob.placement`);
2. creates the TFJob, or adopts the one a previous attempt of the same step created: the
   name and the `landmarks.io/launch-key` label derive from the KFP run and task
   (`launch_identity`), so a retried step follows its job instead of starting a second one;
   a job of that name that the step did not create is an error;
3. watches the job's conditions (a watch on the TFJob, resumed after `410 Gone` and broken
   connections), streams every replica's log prefixed `[worker-0] `, and returns a
   `JobResult` (`landmarks.tfjob.local.JobResult`, as the local executor does) when the job
   Succeeded, Failed or was deleted;
4. deletes the job when its timeout passes or when it is cancelled (SIGTERM, Ctrl-C);
5. says in its log, within a poll, why a replica is not running (Unschedulable, an image that
   cannot be pulled, a missing Secret: `pod_problem`), and deletes the job and fails when a
   replica stays Pending past `pending_timeout`, or cannot start its container past the
   shorter `start_error_timeout`;
6. replaces the job when a retried step finds it Failed (annotation `landmarks.io/attempt`),
   until `max_attempts` jobs have failed; a Succeeded job's result stands.

Owner reference. A TFJob owned by the launcher's pod disappears with the KFP run (the
garbage collector deletes it with the pod). Kubernetes allows an owner only in the
dependent's own namespace, so the owner is set when the launcher pod runs in the training
namespace; the chart's default (KFP in `kubeflow`, training in `landmarks-training`) is
cross-namespace, and there the job is removed by the launcher on cancellation, by
`runPolicy.activeDeadlineSeconds` when the launcher is gone, and by
`runPolicy.ttlSecondsAfterFinished` once it ended.

What the runner's service account needs in the training namespace (the chart's Role):
tfjobs create/get/list/watch/patch/delete, pods get/list/watch, pods/log get, events list,
and get on the defaults ConfigMap.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from landmarks.errors import InputError, LandmarksError
from landmarks.tfjob.local import REPLICA_TYPES, JobResult, ReplicaOutcome
from landmarks.tfjob.placement import (
    DEFAULTS_CONFIGMAP,
    DEFAULTS_KEY,
    Placement,
    apply_cluster_settings,
    parse_defaults,
)
from landmarks.tfjob.spec import _MAX_NAME, API_VERSION, CONTAINER_NAME, KIND, dns1035_name

log = logging.getLogger(__name__)

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "tfjobs"
# Labels the training-operator puts on the pods it creates for a job.
JOB_NAME_LABEL = "training.kubeflow.org/job-name"
REPLICA_TYPE_LABEL = "training.kubeflow.org/replica-type"
REPLICA_INDEX_LABEL = "training.kubeflow.org/replica-index"
# Ours: which run and task created a job, so a retried step recognises it.
LAUNCH_KEY_LABEL = "landmarks.io/launch-key"
RUN_ID_LABEL = "landmarks.io/run-id"
TASK_LABEL = "landmarks.io/task"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "landmarks-launcher"
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
ATTEMPT_ANNOTATION = "landmarks.io/attempt"
# Waiting reasons of a container that cannot start (kubelet: pkg/kubelet/images and
# kuberuntime); the short bound applies to them.
START_ERRORS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
SA_TOKEN_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_KEY_LENGTH = 10
_WATCH_SECONDS = 60  # one watch request; the deadline is checked at least this often
_REQUEST_TIMEOUT = (10, 60)  # (connect, read) seconds of a single request
_LOG_READ_TIMEOUT = 600  # a replica silent this long gets its log stream reopened
_LOG_DRAIN_SECONDS = 5.0  # at most this long for the last lines once the job ended
_LOG_QUIET_SECONDS = 1.0  # ... and only while lines keep coming
_TERMINAL = ("Succeeded", "Failed")


class Cancelled(LandmarksError):
    """The launcher was told to stop (SIGTERM or Ctrl-C); its job was deleted.

    `exit_code` is the shell's code for death by that signal (143 for SIGTERM), which the
    command line exits with: the pod's status then shows it was stopped, not that it failed.
    """

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class DeadlinePassed(Exception):
    """The launcher's timeout passed while the job was still running."""


class ReplicaStuck(Exception):
    """A replica stayed Pending, or could not start its container, past its bound."""

    def __init__(self, label: str, problem: PodProblem, seconds: float, bound: float) -> None:
        super().__init__(f"{label}: {problem.reason}")
        self.label = label
        self.problem = problem
        self.seconds = seconds
        self.bound = bound


# -- why a replica is not running ----------------------------------------------------------


@dataclass(frozen=True)
class PodProblem:
    """Why a replica's pod is not running.

    Attributes:
        reason: The API's reason: `Unschedulable`, `ImagePullBackOff`, `ErrImagePull`,
            `CreateContainerConfigError`, ...
        message: The scheduler's or the kubelet's explanation.
        start_error: The container cannot start (`START_ERRORS`): the short bound applies.
    """

    reason: str
    message: str
    start_error: bool

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason


def pod_problem(pod: Mapping[str, Any]) -> PodProblem | None:
    """What keeps a pod (the API's JSON) from running; None while nothing is wrong yet.

    A container waiting for a reason of `START_ERRORS` (init containers first), or a pod the
    scheduler could not place (condition PodScheduled False). A pod being scheduled, pulling
    its image or creating its container has no problem.
    """
    status = pod.get("status") or {}
    for container in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason in START_ERRORS:
            message = str(waiting.get("message") or "").strip()
            name = container.get("name", "?")
            return PodProblem(reason, f"container {name}: {message or reason}", True)
    if status.get("phase") == "Pending":
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                reason = str(condition.get("reason") or "Unschedulable")
                return PodProblem(reason, str(condition.get("message") or "").strip(), False)
    return None


# -- identity ----------------------------------------------------------------------------


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


# -- clients, defaults, owner -------------------------------------------------------------


def load_api_client(kubeconfig: str | os.PathLike[str] | None = None) -> Any:
    """A Kubernetes API client: the given kubeconfig, else in-cluster, else $KUBECONFIG."""
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        elif os.environ.get("KUBERNETES_SERVICE_HOST") and SA_TOKEN_FILE.exists():
            # Re-reads the projected token when it rotates: training outlives a token.
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(client_configuration=cfg)
    except (config.ConfigException, OSError) as err:
        raise LandmarksError(
            f"no Kubernetes credentials: {err} (run in a pod with a service account, or "
            "set KUBECONFIG)"
        ) from None
    # One connection per replica's log stream, plus the watch and the pod listing.
    cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, 32)
    return client.ApiClient(cfg)


def read_training_defaults(core: Any, namespace: str) -> dict[str, Any] | None:
    """`defaults.json` of the chart's ConfigMap in `namespace`, or None where there is none."""
    from kubernetes.client.exceptions import ApiException

    source = f"configmap {namespace}/{DEFAULTS_CONFIGMAP}"
    try:
        configmap = core.read_namespaced_config_map(DEFAULTS_CONFIGMAP, namespace)
    except ApiException as err:
        if err.status in (403, 404):
            log.warning(
                "%s: %s; the replicas get no cluster defaults (service account, security "
                "contexts, GPU placement) beyond what the step sets. Install the "
                "landmarks-platform chart for namespace %s.",
                source,
                "not found" if err.status == 404 else "this identity may not read it",
                namespace,
            )
            return None
        raise _api_error(f"read {source}", err) from None
    text = (configmap.data or {}).get(DEFAULTS_KEY)
    if text is None:
        raise InputError(f"has no key {DEFAULTS_KEY!r}", file=source)
    return parse_defaults(text, source=f"{source} ({DEFAULTS_KEY})")


@dataclass(frozen=True)
class OwnerPod:
    """The pod a TFJob belongs to: deleting it (with the KFP run) deletes the job."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        # No blockOwnerDeletion: it would need update on pods/finalizers, and buys nothing.
        return {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}


def owner_from_environment(
    core: Any, job_namespace: str, env: Mapping[str, str] | None = None
) -> OwnerPod | None:
    """The launcher's own pod, when it may own a job in `job_namespace`; else None (logged).

    The pod's name comes from KFP_POD_NAME (KFP sets it), POD_NAME or HOSTNAME, its
    namespace from POD_NAMESPACE or the service account's namespace file, its uid from
    KFP_POD_UID, POD_UID or the API.
    """
    env = os.environ if env is None else env
    in_pod = SA_NAMESPACE_FILE.exists()
    name = env.get("KFP_POD_NAME") or env.get("POD_NAME") or (env.get("HOSTNAME") if in_pod else "")
    namespace = env.get("POD_NAMESPACE") or (
        SA_NAMESPACE_FILE.read_text().strip() if in_pod else ""
    )
    if not name or not namespace:
        log.info("not running in a pod: the TFJob gets no owner reference")
        return None
    if namespace != job_namespace:
        log.info(
            "the launcher pod %s/%s cannot own a TFJob in namespace %s (Kubernetes forbids "
            "owners in another namespace): the job is deleted on cancellation, stopped by "
            "runPolicy.activeDeadlineSeconds and removed by ttlSecondsAfterFinished instead",
            namespace,
            name,
            job_namespace,
        )
        return None
    uid = env.get("KFP_POD_UID") or env.get("POD_UID")
    if not uid:
        from kubernetes.client.exceptions import ApiException

        try:
            uid = core.read_namespaced_pod(name, namespace).metadata.uid
        except ApiException as err:
            log.warning("cannot look up the launcher pod %s/%s: %s", namespace, name, err.reason)
            return None
    return OwnerPod(name, namespace, str(uid))


# -- the launcher --------------------------------------------------------------------------


def _api_error(action: str, err: Any) -> LandmarksError:
    """A LandmarksError that says what was refused and, for 403, which Role grants it."""
    try:
        message = json.loads(err.body).get("message", "") if err.body else ""
    except (TypeError, ValueError):
        message = str(err.body)
    text = f"cannot {action}: {err.status} {err.reason}" + (f": {message}" if message else "")
    if err.status == 403:
        text += (
            "; the launcher's service account needs the landmarks-tfjob-launcher Role of the "
            "landmarks-platform chart in that namespace (values pipelineRunner.*)"
        )
    elif err.status == 404 and "tfjobs" in action:
        text += (
            "; is the training-operator (the kubeflow.org/v1 TFJob CRD) installed, and does "
            "the namespace exist?"
        )
    if err.status == 422:
        return InputError(text, field="manifest")
    return LandmarksError(text)


def _transient(err: BaseException) -> bool:
    """An error worth retrying: the API server or the network, not the request."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(err, ApiException):
        return err.status in (0, 429, 500, 502, 503, 504)
    return isinstance(err, HTTPError | ConnectionError | TimeoutError)


def _conditions(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((job.get("status") or {}).get("conditions") or [])


def _finished(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """The job's Succeeded or Failed condition, if it has ended."""
    for condition in reversed(_conditions(job)):
        if condition.get("type") in _TERMINAL and condition.get("status") == "True":
            return condition
    return None


class _Interrupts:
    """SIGTERM (KFP cancelling the run, the pod being evicted) raises Cancelled, once.

    Later signals are ignored so that they cannot break off the deletion the first one
    started. Inside `deferred()` the signal waits until the block ends: a job whose create
    request is answered must have its uid recorded before Cancelled can delete it.
    """

    def __init__(self) -> None:
        self._deferring = 0
        self._pending: int | None = None
        self._raised = False

    def handler(self, signum: int, frame: Any) -> None:
        if self._raised:
            log.warning("%s again: still deleting the job", signal.Signals(signum).name)
            return
        if self._deferring:
            self._pending = signum
            return
        self._raise(signum)

    def _raise(self, signum: int) -> None:
        self._raised = True
        raise Cancelled(f"stopped by {signal.Signals(signum).name}", signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring and self._pending is not None and not self._raised:
                self._raise(self._pending)


@contextlib.contextmanager
def _signals_raise() -> Iterator[_Interrupts]:
    """SIGTERM raises Cancelled (see `_Interrupts`) while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield _Interrupts()  # never installed: nothing to defer
        return
    interrupts = _Interrupts()
    previous = signal.signal(signal.SIGTERM, interrupts.handler)
    try:
        yield interrupts
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _PodRecord:
    label: str
    uids: list[str] = field(default_factory=list)
    node: str | None = None
    pod: Any = None  # the latest V1Pod seen
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    problem: PodProblem | None = None  # what the launcher last said was wrong
    pending_since: float | None = None  # time.monotonic() the current pod was first Pending
    start_error_since: float | None = None  # ... first seen unable to start its container
    clock_uid: str | None = None  # the pod those two times are about


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
        from kubernetes import client

        if manifest.get("kind") != KIND:
            raise InputError(f"not a TFJob manifest (kind {manifest.get('kind')!r})", field="kind")
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        metadata = manifest.get("metadata") or {}
        self.namespace = namespace or metadata.get("namespace") or "default"
        self.name = str(metadata.get("name") or "")
        if not self.name:
            raise InputError("the TFJob has no name", field="metadata.name")
        if max_attempts < 1:
            raise InputError(f"must be at least 1 (got {max_attempts})", field="max_attempts")
        self.timeout = timeout
        self.pending_timeout = pending_timeout or None
        self.start_error_timeout = start_error_timeout or None
        self.max_attempts = max_attempts
        self.attempt = 1
        self.output = output or sys.stdout
        self.poll_seconds = poll_seconds
        self.stream_logs = stream_logs
        self.key = (metadata.get("labels") or {}).get(LAUNCH_KEY_LABEL)
        self._placement = placement
        self._owner = owner
        self._manifest = copy.deepcopy(dict(manifest))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pods: dict[str, _PodRecord] = {}
        self._threads: list[threading.Thread] = []
        self._streams: set[Any] = set()
        self._last_line = 0.0
        self._seen_conditions: set[tuple[str, str, str]] = set()
        self._interrupts = _Interrupts()
        self._watch_resp: Any = None  # the open watch response, closed when a replica is stuck
        self._stuck: ReplicaStuck | None = None
        self._out_of_attempts = False
        self.uid: str | None = None

    # -- output --------------------------------------------------------------------------

    def _emit(self, line: str) -> None:
        with self._lock:
            self.output.write(line if line.endswith("\n") else line + "\n")
            self.output.flush()

    def _say(self, message: str) -> None:
        self._emit(f"[launcher] {self.namespace}/{self.name}: {message}")

    # -- build and submit ----------------------------------------------------------------

    def build(self) -> dict[str, Any]:
        """The manifest as it will be created: namespace, cluster defaults, placement, owner."""
        manifest = copy.deepcopy(self._manifest)
        manifest.setdefault("metadata", {})["namespace"] = self.namespace
        defaults = read_training_defaults(self.core, self.namespace)
        manifest = apply_cluster_settings(manifest, defaults, self._placement)
        owner = self._owner
        if owner == "auto":
            owner = owner_from_environment(self.core, self.namespace)
        if isinstance(owner, OwnerPod):
            if owner.namespace != self.namespace:
                raise InputError(
                    f"pod {owner.namespace}/{owner.name} cannot own a TFJob in namespace "
                    f"{self.namespace}: Kubernetes forbids owners in another namespace",
                    field="owner",
                )
            manifest["metadata"]["ownerReferences"] = [owner.reference()]
        self._owner = owner
        return manifest

    def submit(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create the job, or adopt ours if it exists; returns the job as the API has it.

        Ours and Failed, with attempts left (`max_attempts`, counted on the job's
        `landmarks.io/attempt` annotation): deleted and created anew, so that a retried step
        trains again instead of reporting the old failure until the TTL removes the job.
        """
        from kubernetes.client.exceptions import ApiException

        what = f"TFJob {self.namespace}/{self.name}"
        for _ in range(4):
            try:
                # A SIGTERM waits for the answer: the uid it brings is what Cancelled deletes.
                with self._interrupts.deferred():
                    job = self.custom.create_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        self.namespace,
                        PLURAL,
                        _with_attempt(manifest, self.attempt),
                        _request_timeout=_REQUEST_TIMEOUT,
                    )
                    self.uid = job["metadata"]["uid"]
                attempt = f" (attempt {self.attempt} of {self.max_attempts})"
                self._say("created" + (attempt if self.attempt > 1 else ""))
                return job
            except ApiException as err:
                if err.status != 409:
                    raise _api_error(f"create tfjobs {what}", err) from None
            try:
                with self._interrupts.deferred():
                    job = self.custom.get_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        self.namespace,
                        PLURAL,
                        self.name,
                        _request_timeout=_REQUEST_TIMEOUT,
                    )
                    theirs = (job["metadata"].get("labels") or {}).get(LAUNCH_KEY_LABEL)
                    if self.key and theirs == self.key:
                        self.uid = job["metadata"]["uid"]
            except ApiException as err:
                if err.status == 404:
                    continue  # deleted in between: create it again
                raise _api_error(f"get tfjobs {what}", err) from None
            if not self.key or theirs != self.key:
                raise LandmarksError(
                    f"{what} already exists and this step did not create it (its "
                    f"{LAUNCH_KEY_LABEL} label is {theirs!r}, this step's is {self.key!r}): "
                    "delete it or give the job another name"
                )
            if job["metadata"].get("deletionTimestamp"):
                self._say("a previous attempt's job is being deleted: waiting to create anew")
                self._wait_gone(job["metadata"]["uid"])
                self.uid = None
                continue
            self.attempt = _attempt_of(job)
            self._say(f"adopting the job a previous attempt of this step created ({theirs})")
            ended = _finished(job) or {}
            if ended.get("type") == "Failed" and self.attempt < self.max_attempts:
                self._say(
                    f"attempt {self.attempt} of {self.max_attempts} failed "
                    f"({ended.get('reason', '')}: {ended.get('message', '')}): deleting its "
                    f"job to start attempt {self.attempt + 1}"
                )
                self._replace(job)
                self.attempt += 1
                continue
            if ended.get("type") == "Failed":
                self._out_of_attempts = True
                self._say(
                    f"attempt {self.attempt} of {self.max_attempts} failed already and no "
                    "attempt is left, so its result stands (delete the TFJob to train again: "
                    f"kubectl -n {self.namespace} delete tfjob {self.name})"
                )
            elif ended:
                self._say(
                    "it has ended already, so its result stands (delete the TFJob to train "
                    f"again: kubectl -n {self.namespace} delete tfjob {self.name})"
                )
            return self._adopt(job)
        raise LandmarksError(f"{what} keeps reappearing and disappearing; giving up")

    def _replace(self, job: Mapping[str, Any]) -> None:
        """Delete a job of ours and wait until it and its pods are gone (same names follow)."""
        uid = str(job["metadata"]["uid"])
        self.uid = uid
        self.delete()
        self._wait_gone(uid)
        self._wait_pods_gone(uid)
        self.uid = None

    def _wait_pods_gone(self, uid: str, limit: float = 120.0) -> None:
        """Wait for the pods of job `uid`: the next job's pods get the same names."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                left = [p for p in self._list_pods() if _owned_by(p, uid)]
            except Exception as err:
                log.debug("listing the old job's pods failed: %s", err)
                left = [None]
            if not left:
                return
            time.sleep(self.poll_seconds)
        log.warning(
            "pods of the deleted job %s are still there after %.0fs; creating the new one "
            "anyway (the operator retries its pods)",
            uid,
            limit,
        )

    def _adopt(self, job: dict[str, Any]) -> dict[str, Any]:
        """Add this launcher's pod to the owners, so the job outlives the previous one's."""
        from kubernetes.client.exceptions import ApiException

        owner = self._owner
        refs = list(job["metadata"].get("ownerReferences") or [])
        if not isinstance(owner, OwnerPod) or any(r.get("uid") == owner.uid for r in refs):
            return job
        patch = {
            "metadata": {
                "ownerReferences": [*refs, owner.reference()],
                "resourceVersion": job["metadata"]["resourceVersion"],
            }
        }
        try:
            return self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, patch
            )
        except ApiException as err:
            log.warning("could not add %s as an owner of the job: %s", owner.name, err.reason)
            return job

    def _wait_gone(self, uid: str, limit: float = 300.0) -> None:
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                job = self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, self.name
                )
            except ApiException as err:
                if err.status == 404:
                    return
                raise _api_error(f"get tfjobs {self.namespace}/{self.name}", err) from None
            if job["metadata"]["uid"] != uid:
                return
            time.sleep(self.poll_seconds)
        raise LandmarksError(f"TFJob {self.namespace}/{self.name} is still being deleted")

    def delete(self) -> None:
        """Delete the job (its pods and services follow through the garbage collector)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        # Background: Foreground would hang where no garbage collector runs, and the pods
        # go either way.
        body = client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=self.uid) if self.uid else None,
        )
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, body=body
            )
            self._say("deleted")
        except ApiException as err:
            if err.status not in (404, 409):  # gone already, or another job by now
                raise _api_error(f"delete tfjobs {self.namespace}/{self.name}", err) from None

    # -- follow --------------------------------------------------------------------------

    def _report(self, job: Mapping[str, Any]) -> None:
        for condition in _conditions(job):
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

    def wait(
        self, job: Mapping[str, Any], deadline: float | None, resource_version: str | None = None
    ) -> dict[str, Any] | None:
        """Follow the job until it ends (returned) or is deleted (None).

        Raises DeadlinePassed at `deadline` (time.monotonic()). `resource_version` starts the
        watch elsewhere than at `job` (tests use it to exercise the 410 Gone path).
        """
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        self.uid = job["metadata"]["uid"]
        current: Mapping[str, Any] = job
        version = resource_version or job["metadata"]["resourceVersion"]
        backoff = self.poll_seconds
        while True:
            self._report(current)
            if _finished(current):
                return dict(current)
            if self._stuck is not None:
                raise self._stuck
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise DeadlinePassed
            seconds = _WATCH_SECONDS if remaining is None else min(_WATCH_SECONDS, remaining)
            try:
                stream = watch.Watch().stream(
                    self._open_watch,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    field_selector=f"metadata.name={self.name}",
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=max(1, int(seconds + 0.999)),
                    _request_timeout=(10, seconds + 30),
                )
                for event in stream:
                    obj = event["raw_object"]
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] == "BOOKMARK":
                        continue
                    if event["type"] == "DELETED" or obj["metadata"].get("uid") != self.uid:
                        return None
                    current = obj
                    self._report(current)
                    if _finished(current):
                        return dict(current)
                backoff = self.poll_seconds
                continue  # the watch request ended: open the next one
            except Exception as err:
                if self._stuck is not None:
                    raise self._stuck from None  # the pod tracker closed the watch
                if isinstance(err, ApiException) and err.status == 410:
                    # The version fell out of the API server's window: start from now.
                    log.info("watch expired (410 Gone): reading the job again")
                elif _transient(err):
                    log.info("watch interrupted (%s): reading the job again", _short(err))
                    time.sleep(min(backoff, 30))
                    backoff *= 2
                elif isinstance(err, ApiException):
                    raise _api_error(f"watch tfjobs {self.namespace}/{self.name}", err) from None
                else:
                    raise
            # Resynchronise: the job as it is now, and a watch from there.
            try:
                current = self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, self.name
                )
            except ApiException as err:
                if err.status == 404:
                    return None
                if not _transient(err):
                    raise _api_error(f"get tfjobs {self.namespace}/{self.name}", err) from None
                time.sleep(min(backoff, 30))
                backoff *= 2
                continue
            if current["metadata"]["uid"] != self.uid:
                return None
            version = current["metadata"]["resourceVersion"]

    # kubernetes.watch decodes events by the ":return:" line of the function's docstring.
    def _open_watch(self, *args: Any, **kwargs: Any) -> Any:
        """The watch request, kept so that `_interrupt_watch` can close it from another thread.

        :return: object
        """
        resp = self.custom.list_namespaced_custom_object(*args, **kwargs)
        with self._lock:
            self._watch_resp = resp
        if self._stuck is not None:
            _shut(resp)  # stuck while this request was on its way
        return resp

    def _interrupt_watch(self) -> None:
        with self._lock:
            resp = self._watch_resp
        if resp is not None:
            _shut(resp)

    # -- pods and logs -------------------------------------------------------------------

    def _start_pods(self) -> None:
        thread = threading.Thread(target=self._track_pods, name="pods", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _list_pods(self) -> list[Any]:
        return self.core.list_namespaced_pod(
            self.namespace,
            label_selector=f"{JOB_NAME_LABEL}={self.name}",
            _request_timeout=(10, 60),
        ).items

    def _record(self, pod: Any) -> _PodRecord:
        labels = pod.metadata.labels or {}
        rtype = labels.get(REPLICA_TYPE_LABEL, "replica")
        label = f"{rtype}-{labels.get(REPLICA_INDEX_LABEL, '?')}"
        with self._lock:
            record = self._pods.setdefault(pod.metadata.name, _PodRecord(label.lower()))
            if pod.metadata.uid not in record.uids:
                record.uids.append(pod.metadata.uid)
            record.pod = pod
            new_node = pod.spec.node_name and pod.spec.node_name != record.node
            if new_node:
                record.node = pod.spec.node_name
        if new_node:
            self._say(f"{record.label} is on node {record.node} (pod {pod.metadata.name})")
        return record

    def _track_pods(self) -> None:
        followed: set[str] = set()
        while not self._stop.is_set():
            try:
                pods = self._list_pods()
            except Exception as err:  # a listing that fails is retried at the next tick
                log.debug("listing the job's pods failed: %s", err)
                pods = []
            for pod in pods:
                if pod.metadata.uid is None or pod.metadata.labels is None:
                    continue
                if self.uid and not _owned_by(pod, self.uid):
                    continue  # a previous job's pod of the same name, on its way out
                record = self._record(pod)
                self._check_start(record, pod)
                if self.stream_logs and pod.metadata.name not in followed:
                    followed.add(pod.metadata.name)
                    thread = threading.Thread(
                        target=self._follow_log,
                        args=(pod.metadata.name,),
                        name=f"log-{pod.metadata.name}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)
            self._stop.wait(self.poll_seconds)

    def _check_start(self, record: _PodRecord, pod: Any) -> None:
        """Say what keeps a replica from running, and stop the job when it lasts too long."""
        now = time.monotonic()
        problem = pod_problem(self.core.api_client.sanitize_for_serialization(pod))
        if record.clock_uid != pod.metadata.uid:  # a new pod: its own clocks
            record.clock_uid = pod.metadata.uid
            record.pending_since = record.start_error_since = None
        pending = pod.status is not None and pod.status.phase == "Pending"
        record.pending_since = (record.pending_since or now) if pending else None
        starting = problem is not None and problem.start_error
        record.start_error_since = (record.start_error_since or now) if starting else None
        if problem != record.problem:
            if problem is not None:
                bound = self.start_error_timeout if problem.start_error else self.pending_timeout
                self._say(
                    f"{record.label} is not running: {problem}"
                    + (f" (the job is stopped if this lasts {bound:g}s)" if bound else "")
                )
            elif record.problem is not None:
                self._say(f"{record.label}: {record.problem.reason} is over")
            record.problem = problem
        stuck = None
        if (
            problem is not None
            and record.start_error_since is not None
            and self.start_error_timeout
            and now - record.start_error_since >= self.start_error_timeout
        ):
            stuck = ReplicaStuck(
                record.label, problem, now - record.start_error_since, self.start_error_timeout
            )
        elif (
            record.pending_since is not None
            and self.pending_timeout
            and now - record.pending_since >= self.pending_timeout
        ):
            waiting = problem or _waiting(pod)
            stuck = ReplicaStuck(
                record.label, waiting, now - record.pending_since, self.pending_timeout
            )
        if stuck is not None and self._stuck is None:
            self._stuck = stuck
            self._interrupt_watch()

    def _follow_log(self, pod_name: str) -> None:
        """Stream one replica's log for as long as the job runs, across pod restarts.

        A stream that breaks is reopened and the lines already shown are skipped (by their
        timestamps), so a reconnect repeats nothing. Errors are not fatal: a pod that has
        not started has no log yet, and some clusters (KWOK) serve none.
        """
        printed: dict[tuple[str, int], tuple[tuple[str, int], int]] = {}
        done: set[tuple[str, int]] = set()
        failures = 0
        while not self._stop.is_set():
            with self._lock:
                record = self._pods.get(pod_name)
                pod = record.pod if record else None
            status = _container_status(pod)
            if pod is None or status is None or (status.state and status.state.waiting):
                self._stop.wait(self.poll_seconds)
                continue
            key = (pod.metadata.uid, int(status.restart_count or 0))
            if key in done:
                self._stop.wait(self.poll_seconds)
                continue
            assert record is not None
            try:
                ended = self._stream_log(pod_name, record, key, printed)
                failures = 0
            except Exception as err:
                if self._stop.is_set():
                    break  # the stream was shut down because the job ended
                failures += 1
                if failures == 1:
                    log.info("logs of %s are not available yet: %s", record.label, _short(err))
                self._stop.wait(min(self.poll_seconds * 2**failures, 30))
                continue
            if ended and status.state and status.state.terminated:
                done.add(key)  # that container's log is complete

    def _stream_log(
        self,
        pod_name: str,
        record: _PodRecord,
        key: tuple[str, int],
        printed: dict[tuple[str, int], tuple[tuple[str, int], int]],
    ) -> bool:
        """Print the new lines of one container's log; True when the stream ended by itself."""
        resp = self.core.read_namespaced_pod_log(
            pod_name,
            self.namespace,
            container=CONTAINER_NAME,
            follow=True,
            timestamps=True,
            _preload_content=False,
            _request_timeout=(10, _LOG_READ_TIMEOUT),
        )
        with self._lock:
            self._streams.add(resp)
        # (timestamp of the last line shown, how many lines with that timestamp were shown)
        last, shown = printed.get(key, (("", -1), 0))
        skip = shown  # lines with the last timestamp that a reopened stream repeats
        try:
            for raw in _lines(resp):
                if self._stop.is_set():
                    return False
                stamp, text = _split_timestamp(raw)
                if stamp is not None:
                    if stamp < last:
                        continue
                    if stamp == last and skip > 0:
                        skip -= 1
                        continue
                    if stamp > last:
                        last, shown, skip = stamp, 0, 0
                    shown += 1
                    printed[key] = (last, shown)
                record.tail.append(text)
                self._emit(f"[{record.label}] {text}")
                self._last_line = time.monotonic()
            return True
        finally:
            with self._lock:
                self._streams.discard(resp)
            with contextlib.suppress(Exception):
                resp.release_conn()

    def _stop_pods(self, drain: float = 0.0) -> None:
        """Stop following pods; with `drain`, first let the log streams go quiet or end.

        A replica's last lines (a traceback, the final metrics) may still be on their way
        when the job ends: a kubelet closes a finished container's stream once it has sent
        everything, so wait up to `drain` seconds while lines keep coming.
        """
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            with self._lock:
                streaming = bool(self._streams)
                quiet = time.monotonic() - self._last_line
            if not streaming or quiet > _LOG_QUIET_SECONDS:
                break
            time.sleep(0.1)
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for resp in streams:
            # Unblocks the thread reading it (a follow stream may never end by itself).
            with contextlib.suppress(Exception):
                resp.shutdown()
            with contextlib.suppress(Exception):
                resp.close()
        for thread in self._threads:
            thread.join(timeout=5)

    # -- the result ----------------------------------------------------------------------

    def _events(self) -> list[Any]:
        try:
            events = self.core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.name={self.name},involvedObject.kind={KIND}",
            ).items
        except Exception as err:
            log.debug("cannot list the job's events: %s", err)
            return []
        return sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or ""))

    def outcome(self, job: Mapping[str, Any] | None) -> list[ReplicaOutcome]:
        """Every replica with its last exit code (None: stopped or never ended) and restarts."""
        with contextlib.suppress(Exception):
            for pod in self._list_pods():
                self._record(pod)
        exits: dict[str, int] = {}
        for event in self._events():
            found = re.search(r"Pod: \S+?\.(\S+) exited with code (\d+)", event.message or "")
            if found:
                exits[found.group(1)] = int(found.group(2))
        specs = (job or self._manifest).get("spec", {}).get("tfReplicaSpecs") or {}
        outcomes = []
        for rtype in [t for t in REPLICA_TYPES if t in specs]:
            for index in range(int(specs[rtype].get("replicas", 1))):
                pod_name = f"{self.name}-{rtype.lower()}-{index}"
                outcome = ReplicaOutcome(rtype, index, exit_code=exits.get(pod_name))
                with self._lock:
                    record = self._pods.get(pod_name)
                if record is not None:
                    status = _container_status(record.pod)
                    terminated = status and status.state and status.state.terminated
                    if terminated:
                        outcome.exit_code = int(terminated.exit_code)
                    outcome.restarts = (
                        len(record.uids) - 1 + int((status.restart_count if status else 0) or 0)
                    )
                    outcome.tail.extend(record.tail)
                outcomes.append(outcome)
        return outcomes

    def _why(self, known: str = "") -> str:
        """Events and pod states that explain a failure or a wait (beyond `known`)."""
        notes = []
        for event in self._events():
            if str(event.message) in known:
                continue
            if event.type == "Warning" or (
                event.reason == "ExitedWithCode" and not str(event.message).endswith("code 0")
            ):
                note = f"{event.reason}: {event.message}"
                if note not in notes:
                    notes.append(note)
        with self._lock:
            records = list(self._pods.values())
        for record in records:
            pod = record.pod
            if pod is None or pod.status is None or pod.status.phase != "Pending":
                continue
            for condition in pod.status.conditions or []:
                if condition.type == "PodScheduled" and condition.status != "True":
                    notes.append(f"{record.label} not scheduled: {condition.message}")
        return "; ".join(notes[-5:])

    def run(self) -> JobResult:
        """Submit (or adopt) the job and follow it; see `run_on_cluster`."""
        start = time.monotonic()
        deadline = None if not self.timeout else start + self.timeout
        manifest = self.build()
        with _signals_raise() as interrupts:
            self._interrupts = interrupts
            drain = 0.0
            try:
                job = self.submit(manifest)
                self.uid = job["metadata"]["uid"]
                self._start_pods()
                final = self.wait(job, deadline)
                drain = _LOG_DRAIN_SECONDS
            except DeadlinePassed:
                why = self._why()
                self.delete()
                result = self._result(
                    start,
                    False,
                    "DeadlineExceeded",
                    f"still running after the launcher's timeout of {self.timeout:g}s; the "
                    "TFJob was deleted" + (f" ({why})" if why else ""),
                    None,
                )
                return result
            except ReplicaStuck as stuck:
                self.delete()
                if stuck.problem.start_error:
                    what = "could not start its container"
                else:
                    what = "stayed Pending"
                return self._result(
                    start,
                    False,
                    stuck.problem.reason,
                    f"{stuck.label} {what} for {stuck.seconds:.0f}s (the launcher waits "
                    f"{stuck.bound:g}s): {stuck.problem}; the TFJob was deleted",
                    None,
                )
            except BaseException as err:
                # Cancelled, Ctrl-C, or the launcher itself failing: leave no job behind
                # (none was created, or adopted, where there is no uid).
                if self.uid:
                    with contextlib.suppress(Exception):
                        self.delete()
                if isinstance(err, Cancelled):
                    done = f"; TFJob {self.namespace}/{self.name} deleted" if self.uid else ""
                    raise Cancelled(f"{err}{done}", err.signum) from None
                raise
            finally:
                self._stop_pods(drain)
        if final is None:
            return self._result(
                start,
                False,
                "Deleted",
                "the TFJob was deleted before it finished (its owner was deleted, or "
                "someone deleted it)",
                None,
            )
        condition = _finished(final) or {}
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


def _with_attempt(manifest: Mapping[str, Any], attempt: int) -> dict[str, Any]:
    out = copy.deepcopy(dict(manifest))
    out.setdefault("metadata", {}).setdefault("annotations", {})[ATTEMPT_ANNOTATION] = str(attempt)
    return out


def _attempt_of(job: Mapping[str, Any]) -> int:
    """Which attempt of its step a job is (1 for jobs from before the annotation)."""
    text = ((job.get("metadata") or {}).get("annotations") or {}).get(ATTEMPT_ANNOTATION, "1")
    try:
        return max(1, int(text))
    except ValueError:
        return 1


def _owned_by(pod: Any, uid: str) -> bool:
    return any(ref.uid == uid for ref in pod.metadata.owner_references or [])


def _waiting(pod: Any) -> PodProblem:
    """A Pending pod without a known problem: what its container waits for, if anything."""
    status = _container_status(pod)
    waiting = status.state.waiting if status is not None and status.state else None
    if waiting is not None and waiting.reason:
        return PodProblem(str(waiting.reason), str(waiting.message or ""), False)
    return PodProblem("Pending", "", False)


def _shut(resp: Any) -> None:
    """Close a streaming response so that the thread reading it returns at once."""
    with contextlib.suppress(Exception):
        resp.shutdown()
    with contextlib.suppress(Exception):
        resp.close()


def _container_status(pod: Any) -> Any:
    if pod is None or pod.status is None:
        return None
    for status in pod.status.container_statuses or []:
        if status.name == CONTAINER_NAME:
            return status
    return None


def _lines(resp: Any) -> Iterator[str]:
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if buffer:
        yield buffer.decode("utf-8", "replace")


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z ?")


def _split_timestamp(line: str) -> tuple[tuple[str, int] | None, str]:
    """`2026-01-01T00:00:00.5Z text` -> ((seconds, nanoseconds), text); no stamp: (None, line)."""
    found = _STAMP.match(line)
    if not found:
        return None, line
    nanos = int((found.group(2) or "0").ljust(9, "0"))
    return (found.group(1), nanos), line[found.end() :]


def _short(err: BaseException) -> str:
    from kubernetes.client.exceptions import ApiException

    if isinstance(err, ApiException):
        try:
            return f"{err.status}: {json.loads(err.body)['message']}"
        except (TypeError, ValueError, KeyError):
            return f"{err.status} {err.reason}"
    return str(err)


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


__all__ = [
    "ATTEMPT_ANNOTATION",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_PENDING_TIMEOUT_SECONDS",
    "DEFAULT_START_ERROR_TIMEOUT_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "START_ERRORS",
    "Cancelled",
    "ClusterTFJob",
    "DeadlinePassed",
    "LaunchIdentity",
    "OwnerPod",
    "Placement",
    "PodProblem",
    "ReplicaStuck",
    "launch_identity",
    "load_api_client",
    "owner_from_environment",
    "pod_problem",
    "read_training_defaults",
    "run_on_cluster",
]
