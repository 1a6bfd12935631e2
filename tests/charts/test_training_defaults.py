"""The ConfigMap the launcher reads: GPU scheduling and restricted security for training pods."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.charts.helm import KUBE_VERSIONS, PROFILES, Helm, find, launcher_pod, training_defaults
from tests.charts.pss import restricted_violations


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
def test_training_pod_built_from_defaults_is_a_valid_pod(helm: Helm, profile: str) -> None:
    pod = launcher_pod(training_defaults(helm.template(profile)))
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


@pytest.mark.parametrize("profile", PROFILES)
def test_training_pod_built_from_defaults_passes_restricted_pss(helm: Helm, profile: str) -> None:
    defaults = training_defaults(helm.template(profile))
    assert restricted_violations(launcher_pod(defaults)) == []
    # The fields the restricted profile requires, stated rather than inferred.
    assert defaults["securityContext"]["runAsNonRoot"] is True
    assert defaults["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = defaults["container"]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]


def test_pss_check_reports_each_broken_rule() -> None:
    # The check above is only worth something if it can fail.
    pod = {
        "spec": {
            "hostNetwork": True,
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            "containers": [
                {
                    "name": "tensorflow",
                    "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                }
            ],
        }
    }
    found = "\n".join(restricted_violations(pod))
    for rule in (
        "hostNetwork",
        "hostPath",
        "privileged",
        "allowPrivilegeEscalation",
        "drop: must include ALL",
        "only NET_BIND_SERVICE",
        "runAsNonRoot",
        "seccompProfile",
    ):
        assert rule in found


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
