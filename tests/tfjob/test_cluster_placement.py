"""How the launcher combines the cluster's defaults, the manifest and the task's placement."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kfp import dsl

from landmarks.errors import InputError
from landmarks.tfjob import TFJobSpec
from landmarks.tfjob.launcher import (
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


def _own_volumes(manifest: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The volumes and mounts `spec.py` gives every replica itself (e.g. /dev/shm)."""
    pod = _pods(manifest)["Worker"]
    return pod.get("volumes", []), pod["containers"][0].get("volumeMounts", [])


def test_cluster_defaults_fill_every_replica_the_manifest_leaves_unset() -> None:
    out = apply_cluster_settings(_manifest(), DEFAULTS)
    own_volumes, own_mounts = _own_volumes(_manifest())
    assert set(_pods(out)) == {"Chief", "Worker"}
    for pod in _pods(out).values():
        assert pod["serviceAccountName"] == "landmarks-trainer"
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["nodeSelector"] == DEFAULTS["nodeSelector"]
        assert pod["tolerations"] == [GPU_TOLERATION]
        assert pod["volumes"] == DEFAULTS["volumes"] + own_volumes
        assert "affinity" not in pod  # an empty default sets nothing
        container = pod["containers"][0]
        assert container["resources"] == {
            "requests": {"cpu": "4", "memory": "16Gi"},
            "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
        }
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["volumeMounts"] == [{"name": "scratch", "mountPath": "/tmp"}, *own_mounts]
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
    # Whole, not key by key: the chart's L4 pin would keep an A100 pool's nodes out.
    assert pod["nodeSelector"] == {"cloud.google.com/gke-nodepool": "a100-pool"}


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
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
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
    own_volumes, own_mounts = _own_volumes(_manifest())
    # The placement's scratch replaces the chart's where it stood; its new volume comes last.
    assert pod["volumes"] == [placement.volumes[0], *own_volumes, placement.volumes[1]]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "scratch", "mountPath": "/tmp"},
        *own_mounts,
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


# -- precedence: pipeline parameter > task config > manifest > chart value > default ---------

# What each layer says, where it says anything: GPUs per replica and the node selector.
LAYER_GPUS = {"chart": "1", "manifest": "2", "task": "3", "parameter": "4"}
LAYER_POOLS = {
    "chart": DEFAULTS["nodeSelector"],
    "manifest": {"cloud.google.com/gke-nodepool": "manifest-pool"},
    "task": {"cloud.google.com/gke-nodepool": "task-pool"},
    "parameter": {"cloud.google.com/gke-nodepool": "run-pool"},
}
ORDER = ("chart", "manifest", "task", "parameter")  # lowest first


def _layered_pod(layers: set[str]) -> dict[str, Any]:
    """The Worker pod when only `layers` set GPUs and a node selector (no chart: None)."""
    defaults = DEFAULTS if "chart" in layers else None
    manifest = (
        _manifest(gpus_per_worker=2, node_selector=LAYER_POOLS["manifest"])
        if "manifest" in layers
        else _manifest()
    )
    task = Placement.from_task_config(
        dsl.TaskConfig(
            resources={"limits": {"nvidia.com/gpu": "3"}},
            node_selector=LAYER_POOLS["task"],
        )
        if "task" in layers
        else dsl.TaskConfig()
    )
    parameters = (
        Placement.from_parameters(
            gpus_per_worker=4, node_selector="cloud.google.com/gke-nodepool=run-pool"
        )
        if "parameter" in layers
        else Placement.from_parameters()
    )
    return _pods(apply_cluster_settings(manifest, defaults, parameters.over(task)))["Worker"]


LAYER_SETS = [
    frozenset(name for i, name in enumerate(ORDER) if mask >> i & 1)
    for mask in range(2 ** len(ORDER))
]


@pytest.mark.parametrize("layers", LAYER_SETS, ids=lambda s: "+".join(sorted(s)) or "none")
def test_the_highest_layer_that_sets_gpus_and_node_selector_decides_them(
    layers: frozenset[str],
) -> None:
    pod = _layered_pod(set(layers))
    top = next((name for name in reversed(ORDER) if name in layers), None)
    limits = pod["containers"][0].get("resources", {}).get("limits", {})
    if top is None:
        # The built-in default: no GPU, any node, nothing to tolerate.
        assert "nvidia.com/gpu" not in limits
        assert "nodeSelector" not in pod
        assert "tolerations" not in pod
    else:
        assert limits["nvidia.com/gpu"] == LAYER_GPUS[top]
        assert pod["nodeSelector"] == LAYER_POOLS[top]
        assert GPU_TOLERATION in pod["tolerations"]


@pytest.mark.parametrize(
    ("task_gpus", "parameter", "expected"),
    [
        # (task config's GPU limit, the gpus_per_worker parameter, the replica's GPU limit)
        (None, -1, "1"),  # chart
        (None, 0, None),  # the run asks for CPU replicas on a GPU chart
        (None, 2, "2"),
        ("0", -1, None),  # a task config's 0 survives being combined with the parameters
        ("0", 2, "2"),
        ("3", -1, "3"),
        ("3", 0, None),
    ],
)
def test_gpu_count_of_parameter_and_task_config_over_the_chart(
    task_gpus: str | None, parameter: int, expected: str | None
) -> None:
    task = Placement.from_task_config(
        {"resources": {"limits": {"nvidia.com/gpu": task_gpus}}} if task_gpus else None
    )
    placement = Placement.from_parameters(gpus_per_worker=parameter).over(task)
    pod = _pods(apply_cluster_settings(_manifest(), DEFAULTS, placement))["Worker"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits.get("nvidia.com/gpu") == expected
    assert limits["memory"] == "16Gi"  # the chart's other resources stay
    # The chart's pool and toleration stay either way: CPU replicas on the GPU pool.
    assert pod["nodeSelector"] == DEFAULTS["nodeSelector"]
    assert GPU_TOLERATION in pod["tolerations"]


def test_parameter_gpus_use_the_charts_gpu_resource_name() -> None:
    amd_chart = {
        **DEFAULTS,
        "gpuResourceName": "amd.com/gpu",
        "tolerations": [],
        "container": {"resources": {"limits": {"amd.com/gpu": 1}}},
    }
    placement = Placement.from_parameters(gpus_per_worker=2)
    pod = _pods(apply_cluster_settings(_manifest(), amd_chart, placement))["Worker"]
    assert pod["containers"][0]["resources"]["limits"] == {"amd.com/gpu": "2"}
    assert pod["tolerations"] == [
        {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    cpu = Placement.from_parameters(gpus_per_worker=0)
    pod = _pods(apply_cluster_settings(_manifest(), amd_chart, cpu))["Worker"]
    assert "resources" not in pod["containers"][0]
    # Without a chart the GPU resource is nvidia.com/gpu, and the taint is tolerated.
    pod = _pods(apply_cluster_settings(_manifest(), None, placement))["Worker"]
    assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert pod["tolerations"] == [GPU_TOLERATION]


def test_node_selector_parameter_none_lets_replicas_run_on_any_node() -> None:
    placement = Placement.from_parameters(node_selector="none")
    task = Placement(node_selector={"pool": "task"})
    pod = _pods(apply_cluster_settings(_manifest(), DEFAULTS, placement.over(task)))["Worker"]
    assert "nodeSelector" not in pod
    # Only where it runs changed: the chart's GPU and its toleration stay.
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["tolerations"] == [GPU_TOLERATION]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("   ", None),
        ("none", {}),
        ("None", {}),
        ("cloud.google.com/gke-nodepool=gpu-pool", {"cloud.google.com/gke-nodepool": "gpu-pool"}),
        (
            " cloud.google.com/gke-nodepool = a100 , cloud.google.com/gke-accelerator=nvidia-a100 ",
            {
                "cloud.google.com/gke-nodepool": "a100",
                "cloud.google.com/gke-accelerator": "nvidia-a100",
            },
        ),
        ("pool=", {"pool": ""}),  # an empty label value is valid
        ("kubernetes.io/arch=amd64", {"kubernetes.io/arch": "amd64"}),
    ],
)
def test_node_selector_parameter_is_read_as_labels(
    text: str, expected: dict[str, str] | None
) -> None:
    assert Placement.from_parameters(node_selector=text).node_selector == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpu-pool", r"'gpu-pool' is not key=value"),
        ("=gpu-pool", r"'=gpu-pool' is not key=value"),
        ("a=b,", r"'' is not key=value"),
        ("pool=gpu pool", r"label value 'gpu pool'"),
        ("pool=-gpu", r"label value '-gpu'"),
        ("pool=" + "x" * 64, r"label value 'x{64}'"),
        ("Example.COM/pool=a", r"label prefix 'Example.COM' is not a DNS subdomain"),
        ("/pool=a", r"label prefix '' is not a DNS subdomain"),
        ("example.com/=a", r"label name ''"),
        ("_pool=a", r"label name '_pool'"),
        ("pool=a,pool=b", r"label 'pool' is given twice"),
    ],
)
def test_a_bad_node_selector_parameter_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InputError, match=rf"field 'node_selector'.*{message}"):
        Placement.from_parameters(node_selector=text)


@pytest.mark.parametrize("value", [-2, -100, -2.0, True, "1", 1.5])
def test_a_bad_gpus_per_worker_parameter_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(InputError, match=r"field 'gpus_per_worker'"):
        Placement.from_parameters(gpus_per_worker=value)


@pytest.mark.parametrize(("value", "gpus"), [(-1, None), (-1.0, None), (0, 0), (2.0, 2), (8, 8)])
def test_gpus_per_worker_parameter_as_kfp_hands_it(value: Any, gpus: int | None) -> None:
    assert Placement.from_parameters(gpus_per_worker=value).gpus == gpus


def test_unset_parameters_leave_the_task_config_as_it_is() -> None:
    task = Placement.from_task_config(
        dsl.TaskConfig(
            resources={"limits": {"nvidia.com/gpu": "1", "cpu": "2"}},
            node_selector={"pool": "gpu"},
            tolerations=[GPU_TOLERATION],
            env=[{"name": "A", "value": "1"}],
        )
    )
    assert Placement.from_parameters().is_empty()
    assert Placement.from_parameters().over(task) == task
    assert Placement.from_parameters().over(Placement()).is_empty()


def test_parameters_over_task_config_merge_field_by_field() -> None:
    task = Placement(
        resources={"limits": {"nvidia.com/gpu": "1", "cpu": "2"}},
        node_selector={"pool": "task"},
        tolerations=[GPU_TOLERATION],
        affinity={"nodeAffinity": {"task": 1}},
        env=[{"name": "A", "value": "task"}, {"name": "B", "value": "task"}],
        volume_mounts=[{"name": "data", "mountPath": "/data"}],
    )
    run = Placement(
        resources={"limits": {"cpu": "4"}},
        node_selector={"pool": "run"},
        tolerations=[{"key": "dedicated", "operator": "Exists"}],
        env=[{"name": "B", "value": "run"}],
        gpus=2,
    )
    both = run.over(task)
    assert both.resources == {"limits": {"nvidia.com/gpu": "1", "cpu": "4"}}
    assert both.node_selector == {"pool": "run"}
    assert both.tolerations == [GPU_TOLERATION, {"key": "dedicated", "operator": "Exists"}]
    assert both.affinity == {"nodeAffinity": {"task": 1}}
    assert both.env == [{"name": "A", "value": "task"}, {"name": "B", "value": "run"}]
    assert both.volume_mounts == task.volume_mounts
    assert both.gpus == 2
    # Combining copies: neither layer is changed.
    assert task.node_selector == {"pool": "task"} and run.env == [{"name": "B", "value": "run"}]


def test_with_gpus_sets_the_clusters_gpu_resource_unless_one_is_named() -> None:
    amd_chart = {**DEFAULTS, "gpuResourceName": "amd.com/gpu", "container": {}}
    pod = _pods(apply_cluster_settings(_manifest(), amd_chart, Placement().with_gpus(1)))
    assert pod["Worker"]["containers"][0]["resources"]["limits"] == {"amd.com/gpu": "1"}
    named = Placement().with_gpus(1, "nvidia.com/gpu")
    assert named.resources == {"limits": {"nvidia.com/gpu": "1"}} and named.gpus is None
    with pytest.raises(InputError, match="field 'gpus_per_worker'"):
        Placement().with_gpus(-1)


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
