"""The TFJob the cluster launcher submits: valid for the operator's CRD and the namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from landmarks.tfjob import training_job
from landmarks.tfjob.cluster import OwnerPod, launch_identity
from landmarks.tfjob.placement import Placement, apply_cluster_settings
from tests.charts.helm import REPO, Helm, training_defaults
from tests.charts.pss import restricted_violations
from tests.support.upstream import tfjob_crd_path
from tests.tfjob.test_spec import _unknown_fields


@pytest.fixture(scope="module")
def helm(k8s_bin: Path) -> Helm:
    return Helm(k8s_bin / "helm")


def _launcher_manifest(defaults: dict[str, Any]) -> dict[str, Any]:
    """What run_on_cluster creates for a pipeline step, short of talking to the API."""
    manifest = training_job(
        "train-stage2-resnet50",
        stage="stage2-resnet50",
        data="gs://bucket/runs/1/splits",
        out="gs://bucket/runs/1/model",
        workers=2,
        chief=True,
        namespace="landmarks-training",
        ttl_seconds_after_finished=86400,
        active_deadline_seconds=7800,
    ).to_manifest()
    manifest = launch_identity("0b7c6f0e-1111-4c55-8e0f-123456789abc", "train-stage2").apply(
        manifest
    )
    # What the pipeline forwards when a run leaves gpus_per_worker and node_selector unset:
    # its task config's env only, so the chart decides where the replicas run.
    placement = Placement.from_parameters().over(
        Placement(env=[{"name": "PYTHONUNBUFFERED", "value": "1"}])
    )
    manifest = apply_cluster_settings(manifest, defaults, placement)
    owner = OwnerPod("landmark-recognition-abc-system-container-impl", "landmarks-training", "u1")
    manifest["metadata"]["ownerReferences"] = [owner.reference()]
    return manifest


@pytest.mark.parametrize("profile", ["gke", "kind"])
def test_launcher_manifest_validates_against_the_pinned_tfjob_crd(helm: Helm, profile: str) -> None:
    crd = yaml.safe_load(tfjob_crd_path().read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]
    manifest = _launcher_manifest(training_defaults(helm.template(profile)))
    jsonschema.validate(manifest, schema["openAPIV3Schema"])
    # Nothing the API server would prune silently: the run policy, security, placement.
    assert _unknown_fields(manifest, schema["openAPIV3Schema"]) == []


@pytest.mark.parametrize("profile", ["gke", "kind"])
def test_launcher_replicas_are_valid_pods_the_restricted_namespace_admits(
    helm: Helm, profile: str
) -> None:
    manifest = _launcher_manifest(training_defaults(helm.template(profile)))
    for rtype, replica in manifest["spec"]["tfReplicaSpecs"].items():
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"job-{rtype.lower()}-0", **replica["template"]["metadata"]},
            "spec": replica["template"]["spec"],
        }
        kubernetes_validate.validate(pod, "1.35", strict=True)
        assert restricted_violations(pod) == [], rtype
        assert pod["spec"]["serviceAccountName"] == "landmarks-trainer"


def test_gke_replicas_get_one_gpu_on_the_l4_gpu_pool(helm: Helm) -> None:
    manifest = _launcher_manifest(training_defaults(helm.template("gke")))
    pod = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-nodepool": "gpu-pool",
        "cloud.google.com/gke-accelerator": "nvidia-l4",
    }


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        # The Kubernetes client loads when a job is launched, not when the module is read.
        ("landmarks.launch, landmarks.tfjob.cluster", ("tensorflow", "tf_keras", "kubernetes")),
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
