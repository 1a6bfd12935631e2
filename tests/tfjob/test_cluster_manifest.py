"""The TFJob the launcher creates for a pipeline's training step, short of the API call.

Built by the product's own code end to end (`tests.charts.helm.launched_job`: the step's
parameters -> `pipeline_step` -> `cluster_manifest` -> the launcher's `launch_manifest` with
the chart's ConfigMap), then checked for what matters: the operator's CRD accepts it whole,
a retried step can find it, the chart's and the run's placement reach the replicas, and the
replicas can reach KFP's store.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from landmarks.errors import InputError
from landmarks.storage.s3 import KFP_MINIO_SECRET
from landmarks.tfjob.launcher import (
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_TTL_SECONDS,
    LAUNCH_KEY_LABEL,
    RUN_ID_LABEL,
    TASK_LABEL,
    OwnerPod,
    launch_identity,
    launch_manifest,
)
from tests.charts.helm import REPO, STEP, Helm, launched_job, replica_pods
from tests.support.upstream import tfjob_crd_path
from tests.tfjob.test_spec import _unknown_fields

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@pytest.fixture(scope="module")
def helm(k8s_bin: Path) -> Helm:
    return Helm(k8s_bin / "helm")


@pytest.fixture(scope="module")
def gke(helm: Helm) -> list[dict[str, Any]]:
    return helm.template("gke")


def _containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        container
        for replica in job["spec"]["tfReplicaSpecs"].values()
        for container in replica["template"]["spec"]["containers"]
    ]


@pytest.mark.parametrize("profile", ["gke", "kind"])
def test_launcher_manifest_validates_against_the_pinned_tfjob_crd(helm: Helm, profile: str) -> None:
    crd = yaml.safe_load(tfjob_crd_path().read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]
    owner = OwnerPod("launcher-pod", "landmarks-training", "u1")
    job = launched_job(helm.template(profile), owner=owner)
    jsonschema.validate(job, schema["openAPIV3Schema"])
    # Nothing the API server would prune silently: the run policy, security, placement.
    assert _unknown_fields(job, schema["openAPIV3Schema"]) == []


@pytest.mark.parametrize("profile", ["gke", "kind"])
def test_launcher_replicas_are_valid_pods_of_the_trainer_account(helm: Helm, profile: str) -> None:
    for rtype, pod in replica_pods(launched_job(helm.template(profile))).items():
        kubernetes_validate.validate(pod, "1.35", strict=True)
        assert pod["spec"]["serviceAccountName"] == "landmarks-trainer", rtype


def test_the_job_is_found_again_by_a_retry_of_the_same_step_only(
    gke: list[dict[str, Any]],
) -> None:
    job = launched_job(gke)
    metadata = job["metadata"]
    key = launch_identity(STEP["run_id"], STEP["kfp_task"]).key
    # A retry of the step (same run and task) creates the same name with the same key ...
    assert launched_job(gke)["metadata"]["name"] == metadata["name"]
    assert metadata["labels"][LAUNCH_KEY_LABEL] == key
    # ... another task of the run, or the same task of another run, another one.
    assert launched_job(gke, kfp_task="train-stage3")["metadata"]["name"] != metadata["name"]
    assert launched_job(gke, run_id="another-run")["metadata"]["name"] != metadata["name"]
    # The run and task are readable on the job, whole in the annotations.
    assert metadata["annotations"][RUN_ID_LABEL] == STEP["run_id"]
    assert metadata["annotations"][TASK_LABEL] == STEP["kfp_task"]
    assert metadata["labels"][TASK_LABEL] == STEP["kfp_task"]
    # In the chart's training namespace, where the ConfigMap and the Role are.
    assert metadata["namespace"] == "landmarks-training"


def test_every_replica_pod_and_service_name_is_a_valid_dns_label(
    gke: list[dict[str, Any]],
) -> None:
    long_task = "train-stage2-with-a-task-name-far-longer-than-any-kubernetes-name"
    for task in (STEP["task_name"], long_task):
        job = launched_job(gke, task_name=task, workers=12)
        name = job["metadata"]["name"]
        # The operator names pods and services `<job>-<type>-<index>`.
        longest = f"{name}-worker-{job['spec']['tfReplicaSpecs']['Worker']['replicas'] - 1}"
        assert _DNS1035.match(longest) and len(longest) <= 63, longest


def test_gke_replicas_get_one_gpu_on_the_l4_gpu_pool(gke: list[dict[str, Any]]) -> None:
    pod = launched_job(gke)["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-nodepool": "gpu-pool",
        "cloud.google.com/gke-accelerator": "nvidia-l4",
    }
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]


def test_the_runs_placement_parameters_win_over_the_chart(gke: list[dict[str, Any]]) -> None:
    job = launched_job(
        gke, gpus_per_worker=2, node_selector="cloud.google.com/gke-accelerator=nvidia-a100"
    )
    pod = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-a100"}
    cpu = launched_job(gke, gpus_per_worker=0, node_selector="none")
    pod = cpu["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"].get("limits", {})
    assert not pod.get("nodeSelector")


def test_replicas_reach_kfps_store_and_keep_the_task_configs_env(
    gke: list[dict[str, Any]],
) -> None:
    task_config = {"env": [{"name": "PYTHONUNBUFFERED", "value": "1"}]}
    job = launched_job(gke, task_config=task_config)
    for container in _containers(job):
        env = {item["name"]: item for item in container.get("env", [])}
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == KFP_MINIO_SECRET, name
        assert env["PYTHONUNBUFFERED"]["value"] == "1"
        # TF_CONFIG is the operator's to write; one set here would be overwritten or wrong.
        assert "TF_CONFIG" not in env
        # The replicas read and write the artifacts' URIs, not the launcher pod's paths.
        args = " ".join(container["args"])
        assert STEP["splits_uri"] in args and STEP["model_uri"] in args
        assert STEP["model_path"] not in args


def test_the_job_outlives_the_launchers_timeout_but_not_by_long(
    gke: list[dict[str, Any]],
) -> None:
    policy = launched_job(gke, timeout_s=5400)["spec"]["runPolicy"]
    # Stopped by the operator only if the launcher, which deletes it at 5400 s, is gone.
    assert 5400 < policy["activeDeadlineSeconds"] <= 5400 + 3600
    default = launched_job(gke)["spec"]["runPolicy"]["activeDeadlineSeconds"]
    assert DEFAULT_TIMEOUT_SECONDS < default <= DEFAULT_TIMEOUT_SECONDS + 3600
    assert policy["ttlSecondsAfterFinished"] == DEFAULT_TTL_SECONDS


def test_the_launcher_pod_owns_the_job_only_in_its_own_namespace(
    gke: list[dict[str, Any]],
) -> None:
    owner = OwnerPod("launcher-pod", "landmarks-training", "uid-1")
    job = launched_job(gke, owner=owner)
    assert job["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "launcher-pod", "uid": "uid-1"}
    ]
    assert "ownerReferences" not in launched_job(gke)["metadata"]
    with pytest.raises(InputError, match="another namespace") as raised:
        launch_manifest(
            job,
            namespace="landmarks-training",
            defaults=None,
            placement=None,
            owner=OwnerPod("launcher-pod", "kubeflow", "uid-1"),
        )
    assert raised.value.field == "owner"


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        # The Kubernetes client loads when a job is launched, not when the module is read.
        (
            "landmarks.pipeline_steps.training, landmarks.tfjob.launcher",
            ("tensorflow", "tf_keras", "kubernetes"),
        ),
        # The component image has no TensorFlow (kfp itself brings the Kubernetes client).
        ("components.train", ("tensorflow", "tf_keras")),
    ],
)
def test_importing_the_launcher_does_not_load_tensorflow(
    modules: str, absent: tuple[str, ...]
) -> None:
    code = f"import sys, {modules}\nprint(','.join(m for m in {absent!r} if m in sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert proc.stdout.strip() == ""
