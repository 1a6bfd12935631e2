"""The ConfigMap the launcher reads: GPU scheduling and restricted security for training pods."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from landmarks.tfjob import TFJobSpec
from landmarks.tfjob.placement import (
    DEFAULTS_CONFIGMAP,
    DEFAULTS_KEY,
    Placement,
    apply_cluster_settings,
    parse_defaults,
)
from tests.charts.helm import (
    KUBE_VERSIONS,
    PROFILES,
    Helm,
    find,
    launched_job,
    replica_pods,
    training_defaults,
)


def test_gke_profile_sends_workers_to_the_gpu_pool_with_one_gpu(helm: Helm) -> None:
    defaults = training_defaults(helm.template("gke"))
    assert defaults["nodeSelector"] == {
        "cloud.google.com/gke-nodepool": "gpu-pool",
        "cloud.google.com/gke-accelerator": "nvidia-l4",
    }
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in defaults[
        "tolerations"
    ]
    resources = defaults["container"]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    # Kubernetes takes GPUs in limits only; a request would have to equal the limit anyway.
    assert "nvidia.com/gpu" not in resources["requests"]
    assert resources["limits"]["memory"] == "24Gi"
    assert (defaults["gpuResourceName"], defaults["gpusPerWorker"]) == ("nvidia.com/gpu", 1)


def test_gpu_resource_name_and_count_come_from_values(helm: Helm) -> None:
    objects = helm.template(
        "gke", set_values=["training.gpuResourceName=amd.com/gpu", "training.gpusPerWorker=2"]
    )
    limits = training_defaults(objects)["container"]["resources"]["limits"]
    assert limits["amd.com/gpu"] == 2
    assert "nvidia.com/gpu" not in limits


def test_cpu_only_workers_request_no_gpu_but_keep_the_pool(helm: Helm) -> None:
    defaults = training_defaults(helm.template("kind"))
    assert defaults["gpusPerWorker"] == 0
    assert "nvidia.com/gpu" not in defaults["container"]["resources"].get("limits", {})
    assert defaults["nodeSelector"] == {"cloud.google.com/gke-nodepool": "gpu-pool"}
    assert defaults["tolerations"]


def test_scheduling_values_pass_through_unchanged(helm: Helm) -> None:
    affinity = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {
                            "matchLabels": {"training.kubeflow.org/replica-type": "worker"}
                        },
                    },
                }
            ]
        }
    }
    objects = helm.template(
        set_values=[
            "training.nodeSelector.cloud\\.google\\.com/gke-accelerator=nvidia-tesla-t4",
            "training.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"
            "[0].weight=100",
            "training.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"
            "[0].podAffinityTerm.topologyKey=kubernetes.io/hostname",
            "training.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"
            "[0].podAffinityTerm.labelSelector.matchLabels.training\\.kubeflow\\.org/replica-type"
            "=worker",
        ]
    )
    defaults = training_defaults(objects)
    assert defaults["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-tesla-t4"
    assert defaults["affinity"] == affinity


@pytest.mark.parametrize("profile", PROFILES)
def test_the_launchers_replica_pods_are_valid_pods(helm: Helm, profile: str) -> None:
    pods = replica_pods(launched_job(helm.template(profile)))
    assert set(pods) == {"Worker"}
    for version in KUBE_VERSIONS:
        for pod in pods.values():
            kubernetes_validate.validate(pod, version, strict=True)


@pytest.mark.parametrize("profile", PROFILES)
def test_the_launchers_replica_pods_carry_the_restricted_fields(helm: Helm, profile: str) -> None:
    # Whether the restricted namespace admits them is the API server's call:
    # tests/integration/test_pod_security.py.
    objects = helm.template(profile)
    for pod in replica_pods(launched_job(objects)).values():
        # The chart's service account, not the namespace's default one.
        assert pod["spec"]["serviceAccountName"] == training_defaults(objects)["serviceAccountName"]
    # The fields the restricted profile requires, stated rather than inferred.
    defaults = training_defaults(objects)
    assert defaults["securityContext"]["runAsNonRoot"] is True
    assert defaults["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = defaults["container"]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]


def test_read_only_root_gets_a_writable_scratch_dir(helm: Helm) -> None:
    defaults = training_defaults(helm.template())
    assert defaults["container"]["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "scratch", "emptyDir": {"sizeLimit": "20Gi"}} in defaults["volumes"]
    assert {"name": "scratch", "mountPath": "/tmp"} in defaults["container"]["volumeMounts"]
    assert {"name": "HOME", "value": "/tmp"} in defaults["container"]["env"]


def test_trainer_service_account_mounts_no_api_token(helm: Helm) -> None:
    objects = helm.template()
    sa = find(objects, "ServiceAccount", "landmarks-trainer")
    assert sa["automountServiceAccountToken"] is False
    defaults = training_defaults(objects)
    assert defaults["serviceAccountName"] == "landmarks-trainer"
    assert defaults["automountServiceAccountToken"] is False


# -- where training runs: pipeline parameter > task config > chart value > default ----------

A100_POOL = "cloud.google.com/gke-nodepool=a100-pool"
# ci/gke-values.yaml's training.nodeSelector.
GKE_POOL = {
    "cloud.google.com/gke-nodepool": "gpu-pool",
    "cloud.google.com/gke-accelerator": "nvidia-l4",
}


def _worker(
    objects: list[dict[str, Any]] | None,
    *,
    gpus_per_worker: int = -1,
    node_selector: str = "",
    task_config: Any = None,
) -> dict[str, Any]:
    """The Worker pod the launcher submits with the chart rendered as `objects` (None: no
    chart), read through the launcher's own parser, for a run with these parameters."""
    defaults = None
    if objects is not None:
        text = find(objects, "ConfigMap", DEFAULTS_CONFIGMAP)["data"][DEFAULTS_KEY]
        defaults = parse_defaults(text, source="rendered landmarks-training-defaults")
    placement = Placement.from_parameters(
        gpus_per_worker=gpus_per_worker, node_selector=node_selector
    ).over(Placement.from_task_config(task_config))
    manifest = TFJobSpec(name="train", workers=2).to_manifest()
    out = apply_cluster_settings(manifest, defaults, placement)
    return out["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]


def _gpus(pod: dict[str, Any], resource: str = "nvidia.com/gpu") -> str | None:
    return pod["containers"][0].get("resources", {}).get("limits", {}).get(resource)


def test_chart_values_decide_when_the_run_sets_no_parameter(helm: Helm) -> None:
    objects = helm.template(
        "gke",
        set_values=[
            "training.gpusPerWorker=2",
            "training.nodeSelector.cloud\\.google\\.com/gke-nodepool=h100-pool",
        ],
    )
    pod = _worker(objects)
    assert _gpus(pod) == "2"
    assert pod["nodeSelector"] == {**GKE_POOL, "cloud.google.com/gke-nodepool": "h100-pool"}


@pytest.mark.parametrize(
    ("profile", "gpus", "selector", "expected_gpus", "expected_selector"),
    [
        # (chart profile, parameters, what the Worker gets)
        ("gke", 4, "", "4", GKE_POOL),
        ("gke", 0, "", None, GKE_POOL),
        ("gke", -1, A100_POOL, "1", {"cloud.google.com/gke-nodepool": "a100-pool"}),
        ("gke", 8, A100_POOL, "8", {"cloud.google.com/gke-nodepool": "a100-pool"}),
        ("gke", -1, "none", "1", None),
        ("kind", -1, "", None, {"cloud.google.com/gke-nodepool": "gpu-pool"}),
        ("kind", 1, "", "1", {"cloud.google.com/gke-nodepool": "gpu-pool"}),
        ("default", -1, "", "1", {"cloud.google.com/gke-nodepool": "gpu-pool"}),
    ],
)
def test_run_parameters_beat_the_chart_values(
    helm: Helm,
    profile: str,
    gpus: int,
    selector: str,
    expected_gpus: str | None,
    expected_selector: dict[str, str] | None,
) -> None:
    pod = _worker(helm.template(profile), gpus_per_worker=gpus, node_selector=selector)
    assert _gpus(pod) == expected_gpus
    assert pod.get("nodeSelector") == expected_selector
    # The chart's tolerations hold whatever the run says: CPU replicas may still land on
    # the tainted GPU pool.
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]


def test_task_config_sits_between_run_parameters_and_the_chart(helm: Helm) -> None:
    objects = helm.template("gke")
    task = {"resources": {"limits": {"nvidia.com/gpu": "2"}}, "node_selector": {"pool": "task"}}
    pod = _worker(objects, task_config=task)
    assert (_gpus(pod), pod["nodeSelector"]) == ("2", {"pool": "task"})
    pod = _worker(objects, task_config=task, gpus_per_worker=3, node_selector=A100_POOL)
    assert (_gpus(pod), pod["nodeSelector"]) == (
        "3",
        {"cloud.google.com/gke-nodepool": "a100-pool"},
    )


def test_parameter_gpus_are_requested_as_the_charts_gpu_resource(helm: Helm) -> None:
    objects = helm.template("gke", set_values=["training.gpuResourceName=amd.com/gpu"])
    pod = _worker(objects, gpus_per_worker=2)
    assert (_gpus(pod, "amd.com/gpu"), _gpus(pod)) == ("2", None)


def test_built_in_default_without_a_chart_is_no_gpu_on_any_node() -> None:
    pod = _worker(None)
    assert _gpus(pod) is None
    assert "nodeSelector" not in pod and "tolerations" not in pod
    pod = _worker(None, gpus_per_worker=1, node_selector=A100_POOL)
    assert _gpus(pod) == "1"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "a100-pool"}
