"""Run one training stage as a TFJob: local processes or a Kubernetes cluster.

This is what every training step of the pipeline calls. The job is always built by
`landmarks.tfjob.spec.training_job`, so the manifest the local executor runs is the one
a cluster would get; only the executor differs:

- `local`: `landmarks.tfjob.local_executor` runs each replica as a process on this machine;
- `cluster`: `landmarks.tfjob.launcher` submits the TFJob and follows it to the end.

Nothing here imports TensorFlow or the Kubernetes client at import time: the component image
that runs training steps has neither TensorFlow nor a need to load it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from landmarks import storage
from landmarks.artifacts import HISTORY_FILE
from landmarks.errors import InputError, LandmarksError
from landmarks.tfjob import training_job
from landmarks.tfjob.local_executor import run_local
from landmarks.tfjob.placement import GPUS_NOT_SET, NODE_SELECTOR_NOT_SET, Placement
from landmarks.tfjob.results import JobResult
from landmarks.tfjob.spec import dns1035_name, with_object_store_env

log = logging.getLogger(__name__)

EXECUTORS = ("local", "cluster")


class TrainingFailed(LandmarksError):
    """The TFJob ended Failed; the message carries the operator's (or executor's) reason."""

    def __init__(self, result: JobResult) -> None:
        self.result = result
        super().__init__(f"training job failed: {result.summary()}")


@dataclass
class TrainingStep:
    """One training stage of the pipeline, as the component receives it.

    Attributes:
        stage: Trainer stage preset (`stage1`, `stage2-vgg16`, `stage2-resnet50`, `stage3`).
        data: The split directory (local path, or gs://, s3://, minio:// on a cluster).
        out: Where the chief writes the model directory.
        job_name: TFJob name; on a cluster it is derived from the run and task so a retried
            step adopts the job it created.
        executor: `local` or `cluster`.
        workers: Worker replicas (data-parallel).
        chief: Add a Chief replica that coordinates and keeps the outputs.
        profile: Trainer profile (`demo`, `tiny`) or None for the seed's full recipe.
        overrides: Trainer settings, `{"epochs": 3}`.
        weights: `imagenet`, `none` or a path to a no-top weights file (None: stage default).
        checkpoint_dir: Shared per-epoch checkpoints (None: the trainer's default).
        timeout_s: Stop the job (and fail the step) after this long; 0: on a cluster the
            launcher's default (`cluster_timeout`), locally no limit.
        spec: Any other `TFJobSpec` field (image, gpus_per_worker, node_selector, ...).
        run_id: KFP run id; on a cluster, with `task`, it names the job deterministically.
        task: KFP task name (default: `job_name`).
        placement: The task's GPUs, node selector, tolerations (KFP TaskConfig); cluster only.
    """

    stage: str
    data: str
    out: str
    job_name: str
    executor: str = "local"
    workers: int = 2
    chief: bool = False
    profile: str | None = None
    overrides: Mapping[str, Any] | Sequence[str] = ()
    weights: str | None = None
    checkpoint_dir: str | None = None
    timeout_s: float = 0
    spec: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    task: str = ""
    placement: Placement | None = None

    def manifest(self) -> dict[str, Any]:
        return training_job(
            self.job_name,
            stage=self.stage,
            data=self.data,
            out=self.out,
            checkpoint_dir=self.checkpoint_dir,
            weights=self.weights,
            profile=self.profile,
            overrides=self.overrides,
            workers=self.workers,
            chief=self.chief,
            **self.spec,
        ).to_manifest()


def job_name(*parts: str, max_length: int = 50) -> str:
    """A DNS-1035 TFJob name from free-form parts (run id, task name)."""
    return dns1035_name("-".join(parts), max_length)


def cluster_timeout(timeout_s: float) -> float:
    """The timeout of a cluster step: its own, else the launcher's finite default.

    A TFJob whose replicas wait or hang forever would keep its GPUs and the run forever; 0
    therefore does not mean "no limit" on a cluster.
    """
    from landmarks.tfjob.launcher import DEFAULT_TIMEOUT_SECONDS

    return float(timeout_s) if timeout_s and timeout_s > 0 else float(DEFAULT_TIMEOUT_SECONDS)


def _require_local_trainer() -> None:
    """Refuse the local executor where its replicas could not import TensorFlow.

    The replicas are processes of this environment. A pipeline compiled with
    `--mode local` and run by a KFP backend puts the step in the component image, which
    has no TensorFlow: without this check both replicas would die at their first import
    and the step would fail with a traceback far from the cause.
    """
    try:
        found = importlib.util.find_spec("tensorflow") is not None
    except ValueError:  # sys.modules["tensorflow"] is None: the import is blocked
        found = False
    if not found:
        raise InputError(
            "the local executor trains in this environment, which has no TensorFlow (the "
            "component image carries only the launcher): on a cluster compile the pipeline "
            "with `--mode cluster` (executor=cluster); on a laptop install the `train` extra",
            field="executor",
        )


def cluster_manifest(step: TrainingStep) -> dict[str, Any]:
    """The TFJob a cluster step hands the launcher (which lays the cluster's settings over it)."""
    from landmarks.tfjob.launcher import launch_identity

    # Named after the run and task, so a retried step adopts the job instead of starting a
    # second one.
    manifest = launch_identity(step.run_id, step.task or step.job_name).apply(step.manifest())
    # Replicas in other pods reach minio:// / s3:// with credentials from a Secret and the
    # launcher's endpoint settings; local replicas inherit this process's environment.
    uris = [step.data, step.out, step.checkpoint_dir, step.weights]
    return with_object_store_env(manifest, uris)


def run_training_step(step: TrainingStep) -> JobResult:
    """Run the step's TFJob with its executor; raise TrainingFailed unless it succeeds."""
    if step.executor not in EXECUTORS:
        raise InputError(
            f"unknown executor {step.executor!r}; use one of {', '.join(EXECUTORS)}",
            field="executor",
        )
    manifest = step.manifest()
    log.info(
        "training %s with %d worker(s)%s on the %s executor",
        step.stage,
        step.workers,
        " and a chief" if step.chief else "",
        step.executor,
    )
    if step.executor == "local":
        _require_local_trainer()
        result = run_local(manifest, timeout=step.timeout_s or None, output=sys.stdout)
    else:
        from landmarks.tfjob.launcher import run_on_cluster

        result = run_on_cluster(
            cluster_manifest(step),
            timeout=cluster_timeout(step.timeout_s),
            output=sys.stdout,
            placement=step.placement,
        )
    if not result.succeeded:
        raise TrainingFailed(result)
    return result


def pipeline_step(
    *,
    stage: str,
    splits_path: str,
    splits_uri: str,
    model_path: str,
    model_uri: str,
    executor: str,
    task_name: str,
    workers: int,
    profile: str = "",
    epochs: int = 0,
    weights: str = "",
    timeout_s: float = 0,
    run_id: str = "",
    kfp_task: str = "",
    image: str = "",
    namespace: str = "",
    task_config: Any = None,
    gpus_per_worker: int = GPUS_NOT_SET,
    node_selector: str = NODE_SELECTOR_NOT_SET,
) -> TrainingStep:
    """The training step a KFP component's parameters describe; see `train_for_pipeline`."""
    local = executor == "local"
    # Read in both modes, so a mistyped parameter fails the step whatever the executor.
    placement = Placement.from_parameters(
        gpus_per_worker=gpus_per_worker, node_selector=node_selector
    ).over(Placement.from_task_config(task_config))
    spec: dict[str, Any] = {}
    if not local:
        from landmarks.tfjob.launcher import DEFAULT_NAMESPACE, DEFAULT_TTL_SECONDS

        spec = {
            "namespace": namespace or DEFAULT_NAMESPACE,
            "ttl_seconds_after_finished": DEFAULT_TTL_SECONDS,
            # Stops the job should this launcher die without a retry to adopt it.
            "active_deadline_seconds": int(cluster_timeout(timeout_s)) + 600,
        }
        if image:
            spec["image"] = image
    return TrainingStep(
        stage=stage,
        data=splits_path if local else splits_uri,
        out=model_path if local else model_uri,
        job_name=job_name(task_name),
        executor=executor,
        workers=workers,
        profile=profile or None,
        overrides={"epochs": epochs} if epochs else {},
        weights=weights or None,
        timeout_s=timeout_s,
        spec=spec,
        run_id=run_id,
        task=kfp_task or task_name,
        placement=None if local else placement,
    )


def train_for_pipeline(*, model_path: str, model_uri: str, **params: Any) -> dict[str, float]:
    """The body of a KFP training component; returns the final epoch's metrics.

    `params` are `pipeline_step`'s.

    Locally the artifacts' paths are real directories and the replicas write there. On
    a cluster the replicas run in other pods, so they read and write the artifacts' URIs
    (gs://, minio://, s3://) and the model is then copied into the component's output path
    for KFP to record. `run_id` and `kfp_task` name the cluster job (a retried step adopts it);
    `image` is the trainer image, `namespace` the training namespace and `task_config`
    the task's KFP TaskConfig (GPUs, node selector, tolerations for the replicas);
    `gpus_per_worker` and `node_selector`, the run's parameters, go over it (-1 / "": the
    task config's or the chart's; `landmarks.tfjob.placement` gives the order).
    """
    step = pipeline_step(model_path=model_path, model_uri=model_uri, **params)
    run_training_step(step)
    if step.executor != "local":
        storage.download_tree(model_uri, model_path)
    history = _read_history(storage.join(model_path, HISTORY_FILE))
    return {k: float(v) for k, v in history[-1].items() if isinstance(v, int | float)}


def _read_history(uri: str) -> list[dict[str, Any]]:
    history = json.loads(storage.read_text(uri))
    if not history:
        raise LandmarksError(f"{uri}: the training run recorded no epoch")
    return history
