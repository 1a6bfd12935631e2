"""Run a TFJob on a Kubernetes cluster and follow it to the end: the cluster executor.

`run_on_cluster(manifest)` is what a training step of the pipeline runs in its (CPU-only)
KFP pod. It

1. lays the cluster's defaults (ConfigMap `landmarks-training-defaults` in the training
   namespace) and the task's placement (KFP `TaskConfig`) over the manifest
   (`launch_manifest`, `landmarks.tfjob.placement`);
2. creates the TFJob, or adopts the one a previous attempt of the same step created: the
   name and the `landmarks.io/launch-key` label derive from the KFP run and task
   (`identity`), so a retried step follows its job instead of starting a second one;
   a job of that name that the step did not create is an error (`submit`);
3. watches the job's conditions (a watch on the TFJob, resumed after `410 Gone` and broken
   connections: `follow`), streams every replica's log prefixed `[worker-0] `
   (`replica_pods`), and returns a `JobResult` (`landmarks.tfjob.results`, as the local
   executor does) when the job Succeeded, Failed or was deleted;
4. deletes the job when its timeout passes or when it is cancelled (SIGTERM, Ctrl-C);
5. says in its log, within a poll, why a replica is not running (Unschedulable, an image that
   cannot be pulled, a missing Secret: `pod_problems`), and deletes the job and fails when a
   replica stays Pending past `pending_timeout`, or cannot start its container past the
   shorter `start_error_timeout`;
6. replaces the job when a retried step finds it Failed (annotation `landmarks.io/attempt`),
   until `max_attempts` jobs have failed; a Succeeded job's result stands.

Why not the Kubeflow training SDK (`kubeflow-training==1.9.4`, whose `TrainingClient` has
create_job, get_job, wait_for_job_conditions, get_job_logs, delete_job). It resolves with the
project's pins (kubernetes==30.1.0), but it lacks what the launcher is for:
- adoption: `create_job` turns a 409 into a RuntimeError and returns nothing, so a retried
  step can neither find its job by launch key nor replace a Failed one by attempt, and the
  new job's uid (what a SIGTERM during creation must delete) is not known;
- pod problems: `wait_for_job_conditions` polls the job's conditions only, so a replica
  stuck Pending or in ImagePullBackOff waits until the timeout, unexplained;
- logs: `get_job_logs(follow=True)` follows only the pods that are past Pending when it is
  called, once, with no reconnect: a replica that starts later or restarts, or a stream
  that breaks, loses its lines;
- it adds `retrying`, an unmaintained retry library, beside tenacity.
Used for its three thin calls alone (create, get, delete), it would replace a few lines of
`k8s_api` with an extra dependency and the errors it rewords, so the launcher calls the
Kubernetes client itself.

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

from landmarks.tfjob.launcher.follow import Cancelled, DeadlinePassed
from landmarks.tfjob.launcher.identity import (
    ATTEMPT_ANNOTATION,
    LAUNCH_KEY_LABEL,
    RUN_ID_LABEL,
    TASK_LABEL,
    LaunchIdentity,
    OwnerPod,
    launch_identity,
)
from landmarks.tfjob.launcher.job import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_NAMESPACE,
    DEFAULT_PENDING_TIMEOUT_SECONDS,
    DEFAULT_START_ERROR_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_TTL_SECONDS,
    ClusterTFJob,
    launch_manifest,
    run_on_cluster,
)
from landmarks.tfjob.launcher.k8s_api import (
    load_api_client,
    owner_from_environment,
    read_training_defaults,
)
from landmarks.tfjob.launcher.pod_problems import (
    START_ERRORS,
    PodProblem,
    ReplicaStuck,
    pod_problem,
)

__all__ = [
    "ATTEMPT_ANNOTATION",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_PENDING_TIMEOUT_SECONDS",
    "DEFAULT_START_ERROR_TIMEOUT_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_TTL_SECONDS",
    "LAUNCH_KEY_LABEL",
    "RUN_ID_LABEL",
    "START_ERRORS",
    "TASK_LABEL",
    "Cancelled",
    "ClusterTFJob",
    "DeadlinePassed",
    "LaunchIdentity",
    "OwnerPod",
    "PodProblem",
    "ReplicaStuck",
    "launch_identity",
    "launch_manifest",
    "load_api_client",
    "owner_from_environment",
    "pod_problem",
    "read_training_defaults",
    "run_on_cluster",
]
