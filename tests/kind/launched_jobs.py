"""TFJobs as the launcher creates them on this kind cluster, and the pods the operator makes.

`launched_job` goes the way a pipeline's training step goes on a cluster: the component's
parameters (`pipeline_step`), the manifest it hands the launcher (`cluster_manifest`), and the
chart's defaults, read from the live ConfigMap that `make deploy` installed, laid under it with
the task's placement over it (`launch_manifest`), short of the API call.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import yaml

from landmarks.pipeline_steps.training import cluster_manifest, pipeline_step
from landmarks.tfjob.launcher import launch_manifest
from landmarks.tfjob.placement import (
    DEFAULTS_CONFIGMAP,
    DEFAULTS_KEY,
    GPUS_NOT_SET,
    NODE_SELECTOR_NOT_SET,
    parse_defaults,
)
from tests.kind.conftest import STORE_BUCKET, get_json, kubectl

JOB_NAME_LABEL = "training.kubeflow.org/job-name"


def chart_defaults(cluster: str, namespace: str) -> dict[str, Any]:
    """`defaults.json` of the chart's ConfigMap as installed, checked as the launcher checks it."""
    configmap = get_json(cluster, "configmap", "-n", namespace, DEFAULTS_CONFIGMAP)
    source = f"configmap {namespace}/{DEFAULTS_CONFIGMAP}"
    return parse_defaults(configmap["data"][DEFAULTS_KEY], source=source)


def launched_job(
    cluster: str,
    namespace: str,
    *,
    image: str,
    task: str,
    workers: int = 1,
    gpus_per_worker: int = GPUS_NOT_SET,
    node_selector: str = NODE_SELECTOR_NOT_SET,
    task_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The TFJob the launcher creates for a stage-1 training step with these parameters."""
    run_id = str(uuid.uuid4())
    # Nothing is read or written there: the tests look at where and how the pods start.
    root = f"minio://{STORE_BUCKET}/kind-tests/{run_id}"
    step = pipeline_step(
        stage="stage1",
        splits_path="/tmp/outputs/splits",
        splits_uri=f"{root}/split",
        model_path="/tmp/outputs/model",
        model_uri=f"{root}/model",
        executor="cluster",
        task_name=task,
        workers=workers,
        profile="tiny",
        run_id=run_id,
        kfp_task=task,
        image=image,
        namespace=namespace,
        task_config=task_config,
        gpus_per_worker=gpus_per_worker,
        node_selector=node_selector,
    )
    return launch_manifest(
        cluster_manifest(step),
        namespace=namespace,
        defaults=chart_defaults(cluster, namespace),
        placement=step.placement,
        owner=None,
    )


def create(cluster: str, manifest: dict[str, Any]) -> None:
    """A server-side create: admission (the operator's webhook, Pod Security) runs for real."""
    kubectl(cluster, "create", "-f", "-", stdin=yaml.safe_dump(manifest))


def job_pods(cluster: str, job: dict[str, Any]) -> list[dict[str, Any]]:
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    return get_json(cluster, "pods", "-n", namespace, "-l", f"{JOB_NAME_LABEL}={name}")["items"]


def delete_job(cluster: str, job: dict[str, Any]) -> None:
    """Delete the TFJob; the garbage collector takes its pods and Services."""
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    kubectl(cluster, "delete", "tfjob", "-n", namespace, name, "--ignore-not-found",
            "--wait=false")  # fmt: skip


def condition(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    """The pod's condition of type `kind` ({} while it has none)."""
    found = [c for c in pod.get("status", {}).get("conditions", []) if c["type"] == kind]
    return found[0] if found else {}


def describe(cluster: str, pods: list[dict[str, Any]]) -> str:
    """Where the pods are and why, for assertion messages."""
    return json.dumps(
        {
            p["metadata"]["name"]: {
                "node": p["spec"].get("nodeName"),
                "phase": p.get("status", {}).get("phase"),
                "conditions": p.get("status", {}).get("conditions"),
            }
            for p in pods
        },
        indent=1,
    )
