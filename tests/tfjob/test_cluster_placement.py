"""How the launcher combines the cluster's defaults, the manifest and the task's placement."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kfp import dsl

from landmarks.errors import InputError
from landmarks.tfjob import TFJobSpec
from landmarks.tfjob.cluster import (
    LAUNCH_KEY_LABEL,
    RUN_ID_LABEL,
    TASK_LABEL,
    launch_identity,
)
from landmarks.tfjob.placement import Placement, apply_cluster_settings, parse_defaults

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
# The shape the landmarks-platform chart renders (tests/charts check the chart side).
DEFAULTS: dict[str, Any] = {
    "schemaVersion": 1,
    "namespace": "landmarks-training",
    "serviceAccountName": "landmarks-trainer",
    "automountServiceAccountToken": False,
    "gpuResourceName": "nvidia.com/gpu",
    "gpusPerWorker": 1,
    "nodeSelector": {
        "cloud.google.com/gke-nodepool": "gpu-pool",
        "cloud.google.com/gke-accelerator": "nvidia-l4",
    },
    "tolerations": [GPU_TOLERATION],
    "affinity": {},
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "20Gi"}}],
    "container": {
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "resources": {
            "requests": {"cpu": "4", "memory": "16Gi"},
            "limits": {"memory": "16Gi", "nvidia.com/gpu": 1},
        },
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
        "env": [{"name": "HOME", "value": "/tmp"}],
    },
}


def _manifest(**fields: Any) -> dict[str, Any]:
    return TFJobSpec(name="train", workers=2, chief=True, **fields).to_manifest()


def _pods(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    specs = manifest["spec"]["tfReplicaSpecs"]
    return {rtype: spec["template"]["spec"] for rtype, spec in specs.items()}


def test_cluster_defaults_fill_every_replica_the_manifest_leaves_unset() -> None:
    out = apply_cluster_settings(_manifest(), DEFAULTS)
    assert set(_pods(out)) == {"Chief", "Worker"}
    for pod in _pods(out).values():
        assert pod["serviceAccountName"] == "landmarks-trainer"
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["nodeSelector"] == DEFAULTS["nodeSelector"]
        assert pod["tolerations"] == [GPU_TOLERATION]
        assert pod["volumes"] == DEFAULTS["volumes"]
        assert "affinity" not in pod  # an empty default sets nothing
        container = pod["containers"][0]
        assert container["resources"] == {
            "requests": {"cpu": "4", "memory": "16Gi"},
            "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
        }
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["volumeMounts"] == [{"name": "scratch", "mountPath": "/tmp"}]
        assert container["env"] == [{"name": "HOME", "value": "/tmp"}]


def test_what_the_manifest_sets_wins_over_the_defaults() -> None:
    manifest = _manifest(
        service_account="custom",
        cpu="8",
        env={"HOME": "/home/trainer"},
        node_selector={"cloud.google.com/gke-nodepool": "a100-pool"},
    )
    pod = _pods(apply_cluster_settings(manifest, DEFAULTS))["Worker"]
    assert pod["serviceAccountName"] == "custom"
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "8", "memory": "16Gi"}
    assert pod["containers"][0]["env"] == [{"name": "HOME", "value": "/home/trainer"}]
    # Key by key: the pool is the manifest's, the accelerator pin still the cluster's.
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-nodepool": "a100-pool",
        "cloud.google.com/gke-accelerator": "nvidia-l4",
    }


def test_task_placement_wins_over_manifest_and_defaults() -> None:
    placement = Placement(
        resources={"limits": {"nvidia.com/gpu": "2", "cpu": "6"}},
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        affinity={"nodeAffinity": {"x": 1}},
        env=[{"name": "HOME", "value": "/scratch"}, {"name": "NCCL_DEBUG", "value": "INFO"}],
    )
    manifest = _manifest(affinity={"podAntiAffinity": {"y": 2}})
    pod = _pods(apply_cluster_settings(manifest, DEFAULTS, placement))["Worker"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "16Gi", "nvidia.com/gpu": "2", "cpu": "6"}
    assert pod["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-h100-80gb"
    assert pod["nodeSelector"]["cloud.google.com/gke-nodepool"] == "gpu-pool"
    assert pod["tolerations"] == [GPU_TOLERATION, placement.tolerations[0]]
    assert pod["affinity"] == {"nodeAffinity": {"x": 1}}
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert (env["HOME"], env["NCCL_DEBUG"]) == ("/scratch", "INFO")


def test_zero_gpus_for_the_task_means_a_cpu_replica_on_a_gpu_default_cluster() -> None:
    pod = _pods(apply_cluster_settings(_manifest(), DEFAULTS, Placement().with_gpus(0)))["Worker"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert pod["nodeSelector"]["cloud.google.com/gke-nodepool"] == "gpu-pool"


def test_gpu_replicas_tolerate_the_gpu_taint_when_no_layer_says_so() -> None:
    defaults = {**DEFAULTS, "tolerations": [], "gpuResourceName": "nvidia.com/gpu"}
    pod = _pods(apply_cluster_settings(_manifest(), defaults))["Worker"]
    assert pod["tolerations"] == [GPU_TOLERATION]
    cpu_only = {**defaults, "container": {"resources": {"limits": {"memory": "1Gi"}}}}
    assert "tolerations" not in _pods(apply_cluster_settings(_manifest(), cpu_only))["Worker"]


def test_volumes_and_mounts_merge_by_name_and_path() -> None:
    placement = Placement(
        volumes=[
            {"name": "scratch", "emptyDir": {"sizeLimit": "200Gi"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "gldv2"}},
        ],
        volume_mounts=[{"name": "data", "mountPath": "/data", "readOnly": True}],
    )
    pod = _pods(apply_cluster_settings(_manifest(), DEFAULTS, placement))["Chief"]
    assert pod["volumes"] == placement.volumes
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "scratch", "mountPath": "/tmp"},
        {"name": "data", "mountPath": "/data", "readOnly": True},
    ]


def test_no_defaults_and_no_placement_leave_the_manifest_as_built() -> None:
    manifest = _manifest(gpus_per_worker=1, node_selector={"pool": "gpu"})
    assert apply_cluster_settings(manifest, None, None) == manifest


def test_settings_are_applied_to_a_copy() -> None:
    manifest = _manifest()
    before = json.dumps(manifest, sort_keys=True)
    apply_cluster_settings(manifest, DEFAULTS, Placement(env=[{"name": "A", "value": "1"}]))
    assert json.dumps(manifest, sort_keys=True) == before


def test_kfp_task_config_becomes_the_placement_and_empty_fields_mean_unset() -> None:
    config = dsl.TaskConfig(
        resources={"limits": {"nvidia.com/gpu": "1"}, "requests": {}},
        node_selector={"pool": "gpu"},
        tolerations=[],
    )
    placement = Placement.from_task_config(config)
    assert placement.resources == {"limits": {"nvidia.com/gpu": "1"}, "requests": {}}
    assert placement.node_selector == {"pool": "gpu"}
    assert placement.tolerations is None
    assert Placement.from_task_config(dsl.TaskConfig()).is_empty()
    assert Placement.from_task_config(None).is_empty()
    assert Placement.from_task_config({"node_selector": {"a": "b"}}).node_selector == {"a": "b"}


def test_defaults_are_read_and_checked() -> None:
    source = "configmap ns/landmarks-training-defaults (defaults.json)"
    assert parse_defaults(json.dumps(DEFAULTS), source=source) == DEFAULTS
    with pytest.raises(InputError, match=r"ns/landmarks-training-defaults.*not valid JSON"):
        parse_defaults("{", source=source)
    with pytest.raises(
        InputError, match=r"field 'schemaVersion'.*schemaVersion 2 is not supported"
    ):
        parse_defaults(json.dumps({**DEFAULTS, "schemaVersion": 2}), source=source)
    with pytest.raises(InputError, match=r"field 'tolerations'.*expected a JSON array"):
        parse_defaults(json.dumps({**DEFAULTS, "tolerations": {"key": "x"}}), source=source)
    with pytest.raises(InputError, match=r"field 'container.env\[0\]'.*expected an object"):
        bad = {**DEFAULTS, "container": {"env": ["HOME=/tmp"]}}
        parse_defaults(json.dumps(bad), source=source)


def test_same_run_and_task_give_the_same_job_and_others_a_different_one() -> None:
    a = launch_identity("7f3c1a2e-9b1d-4c55-8e0f-123456789abc", "train-stage1")
    again = launch_identity("7f3c1a2e-9b1d-4c55-8e0f-123456789abc", "train-stage1")
    other_task = launch_identity("7f3c1a2e-9b1d-4c55-8e0f-123456789abc", "train-stage3")
    other_run = launch_identity("00000000-9b1d-4c55-8e0f-123456789abc", "train-stage1")
    assert a == again and a.deterministic
    assert len({a.key, other_task.key, other_run.key}) == 3
    assert a.job_name("train-stage1") == again.job_name("train-stage1")


def test_job_names_stay_valid_and_short_whatever_the_prefix() -> None:
    identity = launch_identity("run", "task")
    for prefix in ("train-stage2-resnet50", "X" * 200, "9-lives", "Train_Stage.1", "---"):
        name = identity.job_name(prefix)
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name), name
        assert len(f"{name}-worker-99") <= 63, name
        assert name.endswith(identity.key)


def test_identity_labels_the_job_for_adoption_and_keeps_full_ids_in_annotations() -> None:
    run_id = "run-" + "x" * 80
    manifest = launch_identity(run_id, "train-stage2-2").apply(_manifest())
    labels = manifest["metadata"]["labels"]
    assert labels[LAUNCH_KEY_LABEL] == manifest["metadata"]["name"][-10:]
    assert labels[TASK_LABEL] == "train-stage2-2"
    assert len(labels[RUN_ID_LABEL]) <= 63
    assert manifest["metadata"]["annotations"][RUN_ID_LABEL] == run_id


@pytest.mark.parametrize("run_id", ["", "{{$.pipeline_job_uuid}}"])
def test_without_a_run_id_the_name_is_unique_and_nothing_can_be_adopted(run_id: str) -> None:
    first, second = launch_identity(run_id, "t"), launch_identity(run_id, "t")
    assert not first.deterministic
    assert first.key != second.key
