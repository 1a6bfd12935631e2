"""The TFJob built by `landmarks.tfjob.spec` is what the training-operator expects."""

from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
import yaml

from landmarks.errors import InputError
from landmarks.pipeline_steps.training import job_name
from landmarks.tfjob import TFJobSpec, training_job
from tests.support.upstream import tfjob_crd_path


def _container(manifest: dict[str, Any], replica: str = "Worker") -> dict[str, Any]:
    return manifest["spec"]["tfReplicaSpecs"][replica]["template"]["spec"]["containers"][0]


def test_manifest_has_the_operators_shape() -> None:
    manifest = TFJobSpec(
        name="train-s1",
        namespace="ml",
        image="reg/trainer:1",
        args=["--stage", "stage1"],
        workers=3,
        chief=True,
        gpus_per_worker=2,
        cpu="4",
        memory="16Gi",
        ttl_seconds_after_finished=600,
        active_deadline_seconds=7200,
        backoff_limit=5,
        success_policy="AllWorkers",
        node_selector={"pool": "gpu"},
        service_account="trainer",
        env={"A": "1"},
    ).to_manifest()

    assert (manifest["apiVersion"], manifest["kind"]) == ("kubeflow.org/v1", "TFJob")
    assert manifest["metadata"] == {"name": "train-s1", "namespace": "ml"}
    spec = manifest["spec"]
    # Run-policy fields under runPolicy: at spec level the CRD prunes them silently.
    assert spec["runPolicy"] == {
        "cleanPodPolicy": "Running",
        "ttlSecondsAfterFinished": 600,
        "activeDeadlineSeconds": 7200,
        "backoffLimit": 5,
    }
    assert not {"cleanPodPolicy", "backoffLimit", "activeDeadlineSeconds"} & set(spec)
    assert spec["successPolicy"] == "AllWorkers"
    replicas = spec["tfReplicaSpecs"]
    assert {k: v["replicas"] for k, v in replicas.items()} == {"Chief": 1, "Worker": 3}
    assert {v["restartPolicy"] for v in replicas.values()} == {"ExitCode"}
    container = _container(manifest)
    assert container["name"] == "tensorflow"
    assert container["ports"] == [{"name": "tfjob-port", "containerPort": 2222}]
    assert container["command"] == ["python", "-m", "landmarks.train"]
    assert container["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi"},
        "limits": {"nvidia.com/gpu": "2"},
    }
    assert container["env"] == [{"name": "A", "value": "1"}]
    pod = replicas["Chief"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"} and pod["serviceAccountName"] == "trainer"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        pod["tolerations"]
    )


def test_cpu_job_has_no_gpu_limit_or_toleration() -> None:
    manifest = TFJobSpec(name="cpu", workers=2).to_manifest()
    assert "resources" not in _container(manifest)
    assert "tolerations" not in manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "Chief" not in manifest["spec"]["tfReplicaSpecs"]


def test_training_job_runs_the_trainer_with_its_settings() -> None:
    spec = training_job(
        "stage3",
        stage="stage3",
        data="gs://b/split",
        out="gs://b/models/s3",
        checkpoint_dir="gs://b/ckpt/s3",
        weights="/models/resnet50_notop.h5",
        profile="demo",
        overrides={"epochs": 4, "frozen_blocks": ("conv1", "conv2"), "augment": True},
        workers=2,
        env={"EXTRA": "x"},
    )
    container = _container(spec.to_manifest())
    assert container["args"] == [
        "--stage", "stage3", "--data", "gs://b/split", "--out", "gs://b/models/s3",
        "--checkpoint-dir", "gs://b/ckpt/s3", "--weights", "/models/resnet50_notop.h5",
        "--profile", "demo",
        "--set", "epochs=4", "--set", "frozen_blocks=conv1,conv2", "--set", "augment=true",
    ]  # fmt: skip
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"PYTHONUNBUFFERED": "1", "TF_USE_LEGACY_KERAS": "1", "EXTRA": "x"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Train_1"}, "field 'name'"),
        ({"name": "x" * 60}, "field 'name'"),
        ({"workers": 0}, "field 'workers'"),
        ({"restart_policy": "Sometimes"}, "field 'restart_policy'"),
        ({"clean_pod_policy": "Some"}, "field 'clean_pod_policy'"),
        ({"success_policy": "Chief"}, "field 'success_policy'"),
        ({"backoff_limit": -1}, "field 'backoff_limit'"),
        ({"gpus_per_worker": -1}, "field 'gpus_per_worker'"),
        ({"command": []}, "field 'command'"),
        ({"shm_size": "lots"}, "field 'shm_size'"),
    ],
)
def test_what_the_operator_would_refuse_is_refused_here(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        TFJobSpec(**{"name": "job", **fields}).to_manifest()


def test_a_chief_alone_is_a_valid_job() -> None:
    manifest = TFJobSpec(name="solo", workers=0, chief=True).to_manifest()
    assert list(manifest["spec"]["tfReplicaSpecs"]) == ["Chief"]


def _unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would prune silently (not declared in the structural schema)."""
    if isinstance(value, dict) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return []
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        found = []
        for key, item in value.items():
            if props is not None and key in props:
                found += _unknown_fields(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += _unknown_fields(item, extra, f"{path}.{key}")
            elif props is not None:
                found.append(f"{path}.{key}")
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [f for i, v in enumerate(value) for f in _unknown_fields(v, schema["items"], path)]
    return []


def test_manifest_validates_against_the_pinned_tfjob_crd() -> None:
    crd = yaml.safe_load(tfjob_crd_path().read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = version["schema"]["openAPIV3Schema"]
    manifest = training_job(
        "stage2",
        stage="stage2-resnet50",
        data="gs://b/split",
        out="gs://b/m",
        workers=2,
        chief=True,
        gpus_per_worker=1,
        cpu="4",
        memory="8Gi",
        cpu_limit="8",
        memory_limit="8Gi",
        ttl_seconds_after_finished=60,
        active_deadline_seconds=3600,
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        affinity={"nodeAffinity": {}},
        volumes=[{"name": "w", "persistentVolumeClaim": {"claimName": "weights"}}],
        volume_mounts=[{"name": "w", "mountPath": "/models", "readOnly": True}],
        success_policy="AllWorkers",
    ).to_manifest()
    jsonschema.validate(manifest, schema)
    assert _unknown_fields(manifest, schema) == []
    # The checker does catch what the CRD would prune.
    manifest["spec"]["cleanPodPolicy"] = "All"
    assert _unknown_fields(manifest, schema) == [".spec.cleanPodPolicy"]


def test_render_command_prints_a_job_that_loads_back() -> None:
    command = shlex.split("render --name s1 --workers 2 -- --stage stage1 --data /d --out /o")
    done = subprocess.run(
        [sys.executable, "-m", "landmarks.tfjob", *command],
        capture_output=True,
        text=True,
        check=True,
    )
    manifest = yaml.safe_load(done.stdout)
    assert manifest["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 2
    assert _container(manifest)["args"] == ["--stage", "stage1", "--data", "/d", "--out", "/o"]
    # The same environment as a pipeline's training job: tf-keras, unbuffered logs.
    env = {e["name"]: e["value"] for e in _container(manifest)["env"]}
    assert env == {"PYTHONUNBUFFERED": "1", "TF_USE_LEGACY_KERAS": "1"}


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("Train_Stage.1",), "train-stage-1"),
        (("run", "--", "task"), "run-task"),
        (("9-lives",), "tj-9-lives"),
        (("",), "tj"),
    ],
)
def test_job_names_from_free_form_parts_are_dns1035_labels(
    parts: tuple[str, ...], expected: str
) -> None:
    assert job_name(*parts) == expected


def test_long_job_names_are_cut_without_a_trailing_dash() -> None:
    name = job_name("a" * 49, "b" * 20)
    assert name == "a" * 49 and len(name) <= 50


def _shm(manifest: dict[str, Any], replica: str) -> tuple[list[Any], list[Any]]:
    """The replica's volumes and mounts at /dev/shm."""
    pod = manifest["spec"]["tfReplicaSpecs"][replica]["template"]["spec"]
    mounts = [
        m
        for m in _container(manifest, replica).get("volumeMounts", [])
        if m["mountPath"] == "/dev/shm"
    ]
    names = {m["name"] for m in mounts}
    return [v for v in pod.get("volumes", []) if v["name"] in names], mounts


def test_every_replica_gets_a_memory_backed_dev_shm_the_crd_keeps() -> None:
    manifest = training_job(
        "stage3", stage="stage3", data="gs://b/s", out="gs://b/m", workers=2, chief=True
    ).to_manifest()
    for replica in ("Chief", "Worker"):
        volumes, mounts = _shm(manifest, replica)
        assert volumes == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]
        assert mounts == [{"name": "dshm", "mountPath": "/dev/shm"}]
    crd = yaml.safe_load(tfjob_crd_path().read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]
    jsonschema.validate(manifest, schema["openAPIV3Schema"])
    assert _unknown_fields(manifest, schema["openAPIV3Schema"]) == []


def test_the_dev_shm_size_is_configurable_and_the_volume_can_be_left_out() -> None:
    sized = TFJobSpec(name="big", shm_size="8Gi", volumes=[{"name": "w", "emptyDir": {}}])
    volumes, _ = _shm(sized.to_manifest(), "Worker")
    assert volumes[0]["emptyDir"]["sizeLimit"] == "8Gi"
    pod = sized.to_manifest()["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["w", "dshm"]  # the spec's own stay first

    none = TFJobSpec(name="bare", shm_size=None).to_manifest()
    pod = none["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "volumes" not in pod and "volumeMounts" not in _container(none)

    # A /dev/shm the spec mounts itself wins: one volume at that path, not two.
    own = TFJobSpec(
        name="own",
        volumes=[{"name": "shm", "hostPath": {"path": "/dev/shm"}}],
        volume_mounts=[{"name": "shm", "mountPath": "/dev/shm"}],
    ).to_manifest()
    volumes, mounts = _shm(own, "Worker")
    assert [v["name"] for v in volumes] == ["shm"] and len(mounts) == 1
