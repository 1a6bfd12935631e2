"""The Kubeflow training-operator, built here (scripts/kind/training-operator.sh), runs on a
kind cluster made from the offline node image, and a TFJob that the project builds
(landmarks.tfjob.spec.training_job) of two `trainer-cpu` workers trains stage 1 on tiny data
to the end: both pods Succeeded, the model written, and the TF_CONFIG the operator gave each
pod equal, host names aside, to what the local executor builds (local_executor.tf_config).

LANDMARKS_KIND_CLUSTER names the cluster, LANDMARKS_KIND_TRAINER_IMAGE a trainer-cpu image
already loaded into it (`kind load docker-image`); without them the tests skip.

The data reach the pods by a hostPath: the split is copied into the node (`docker cp`), and the
job runs in a namespace of its own without a Pod Security label (hostPath is refused by the
baseline and restricted profiles), which the test creates and deletes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from landmarks.artifacts import CONFIG_FILE, HISTORY_FILE, MODEL_FILE
from landmarks.tfjob.local_executor import tf_config
from landmarks.tfjob.spec import find_container, training_job
from landmarks.train.recipe import PROFILES
from tests.kind.conftest import REPO, TRAINER_ENV, get_json, kubectl

OPERATOR_SCRIPT = REPO / "scripts/kind/training-operator.sh"
NODE_DIR = "/var/lib/landmarks-kind-test"
JOB_TIMEOUT_S = 900


def run(*argv: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    assert proc.returncode == 0, f"{' '.join(argv)} failed: {proc.stderr.strip()[-2000:]}"
    return proc.stdout


def node_containers(cluster: str) -> list[str]:
    out = run("docker", "ps", "--filter", f"label=io.x-k8s.kind.cluster={cluster}",
              "--format", "{{.Names}}")  # fmt: skip
    names = out.split()
    assert names, f"no node containers of kind cluster {cluster}"
    return names


@pytest.fixture(scope="module")
def operator(cluster: str) -> str:
    """Builds the operator image, loads it and installs the offline overlay (idempotent)."""
    ref = run(str(OPERATOR_SCRIPT), "image", timeout=600).strip()
    for node in node_containers(cluster):
        # `kind load` needs the kind binary; `ctr import` into the node is what it does.
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
        proc = subprocess.run(
            ["docker", "exec", "-i", node, "ctr", "-n", "k8s.io", "images", "import",
             "--all-platforms", "-"],
            stdin=save.stdout, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        save.wait(timeout=60)
        assert proc.returncode == 0, f"importing {ref} into {node}: {proc.stderr}"
    env = {**os.environ, "KUBE_CONTEXT": f"kind-{cluster}"}
    run(str(OPERATOR_SCRIPT), "install", timeout=400, env=env)
    return ref


def test_operator_pod_is_ready_with_the_image_built_here(cluster: str, operator: str) -> None:
    pods = get_json(cluster, "pods", "-n", "kubeflow", "-l",
                    "control-plane=kubeflow-training-operator")["items"]  # fmt: skip
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    pod = pods[0]
    assert pod["spec"]["containers"][0]["image"] == operator
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready.get("Ready") == "True", pod["status"]
    args = pod["spec"]["containers"][0].get("args", [])
    assert "--enable-scheme=tfjob" in args, args
    # The overlay's Secret starts empty; the operator filled it with its own certificate.
    secret = get_json(cluster, "secret", "-n", "kubeflow", "training-operator-webhook-cert")
    assert {"tls.crt", "tls.key"} <= set(secret.get("data", {})), secret.get("data")


@pytest.fixture(scope="module")
def trainer_image() -> str:
    image = os.environ.get(TRAINER_ENV)
    if not image:
        pytest.skip(f"{TRAINER_ENV} is not set: name a trainer-cpu image loaded into the cluster")
    return image


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded dataset, ingested and split by the project's own commands."""
    base = tmp_path_factory.mktemp("tiny")
    cli = [sys.executable, "-c", "import sys; from landmarks.cli import main; sys.exit(main())"]
    run(*cli, "make-data", "--out", str(base / "data"), "--classes", "3",
        "--images-per-class", "12", "--size", "64", "--no-defects")  # fmt: skip
    run(*cli, "ingest", "--metadata", str(base / "data/train.csv"),
        "--labels", str(base / "data/train_label_to_category.csv"),
        "--out", str(base / "ingest"), "--images-dir", str(base / "data/images"))  # fmt: skip
    run(*cli, "split", "--ingest-dir", str(base / "ingest"), "--out", str(base / "split"))
    return base / "split"


@pytest.fixture(scope="module")
def job_namespace(cluster: str, operator: str) -> Iterator[str]:
    name = f"kind-tfjob-{uuid.uuid4().hex[:8]}"
    kubectl(cluster, "create", "namespace", name)
    try:
        yield name
    finally:
        kubectl(cluster, "delete", "namespace", name, "--wait=false")
        for node in node_containers(cluster):
            run("docker", "exec", node, "rm", "-rf", f"{NODE_DIR}/{name}")


def wait_for_job(cluster: str, namespace: str, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = get_json(cluster, "tfjob", "-n", namespace, name)
        done = {
            c["type"]
            for c in job.get("status", {}).get("conditions", [])
            if c["status"] == "True" and c["type"] in ("Succeeded", "Failed")
        }
        if done:
            return job
        time.sleep(5)
    pods = kubectl(cluster, "get", "pods", "-n", namespace, "-o", "wide")
    raise AssertionError(f"TFJob {name} not finished within {JOB_TIMEOUT_S} s:\n{pods}")


def test_two_worker_tfjob_trains_stage1_to_the_end(
    cluster: str, trainer_image: str, tiny_split: Path, job_namespace: str
) -> None:
    host_dir = f"{NODE_DIR}/{job_namespace}"
    for node in node_containers(cluster):
        run("docker", "exec", node, "mkdir", "-p", f"{host_dir}/out")
        run("docker", "cp", str(tiny_split), f"{node}:{host_dir}/split")
        # The trainer runs as uid 1000; the copied files belong to root.
        run("docker", "exec", node, "chmod", "-R", "a+rwX", host_dir)
    name = "stage1-tiny"
    spec = training_job(
        name,
        stage="stage1",
        data="/data/split",
        out="/data/out/stage1",
        profile="tiny",
        image=trainer_image,
        namespace=job_namespace,
        workers=2,
        volumes=[{"name": "data", "hostPath": {"path": host_dir, "type": "Directory"}}],
        volume_mounts=[{"name": "data", "mountPath": "/data"}],
        # Keep the finished pods to read their TF_CONFIG; both must succeed.
        clean_pod_policy="None",
        success_policy="AllWorkers",
        backoff_limit=0,
    )
    manifest = spec.to_manifest()
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    job = wait_for_job(cluster, job_namespace, name)
    pods = get_json(cluster, "pods", "-n", job_namespace, "-l",
                    f"training.kubeflow.org/job-name={name}")["items"]  # fmt: skip
    logs = kubectl(cluster, "logs", "-n", job_namespace, f"{name}-worker-0", "--tail=40")
    conditions = [c["type"] for c in job["status"]["conditions"] if c["status"] == "True"]
    assert "Succeeded" in conditions, f"{job['status']}\n{logs}"
    phases = {p["metadata"]["name"]: p["status"]["phase"] for p in pods}
    assert phases == {f"{name}-worker-0": "Succeeded", f"{name}-worker-1": "Succeeded"}, phases

    addresses = [f"{name}-worker-{i}.{job_namespace}.svc:2222" for i in range(2)]
    for pod in pods:
        index = int(pod["metadata"]["labels"]["training.kubeflow.org/replica-index"])
        container = find_container({"template": {"spec": pod["spec"]}}, "Worker")
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        given = json.loads(env["TF_CONFIG"])
        # Host names aside: the local executor's addresses are 127.0.0.1 ports, the
        # operator's the job's headless Services; all else must be the same.
        assert given["cluster"]["worker"] == addresses, given
        assert given == tf_config({"worker": addresses}, "Worker", index), given

    # The chief's record of the finished run: the model and every epoch of the tiny profile.
    node = node_containers(cluster)[0]
    out = f"{host_dir}/out/stage1"
    listing = run("docker", "exec", node, "ls", out).split()
    assert {MODEL_FILE, HISTORY_FILE, CONFIG_FILE} <= set(listing), listing
    history = json.loads(run("docker", "exec", node, "cat", f"{out}/{HISTORY_FILE}"))
    epochs = PROFILES["tiny"]["epochs"]
    assert len(history) == epochs, history
    for index in range(2):
        worker_logs = kubectl(cluster, "logs", "-n", job_namespace, f"{name}-worker-{index}")
        assert "2 workers" in worker_logs, worker_logs[-3000:]
