"""What the kind tests share: the cluster named by LANDMARKS_KIND_CLUSTER, kubectl on it, the
images loaded there, the chart's training namespace and the in-cluster artifact store.

`make kind-test` (scripts/kind/kind-test.sh) brings the cluster up, sets these variables and
runs this suite. Without LANDMARKS_KIND_CLUSTER (or without kubectl and docker on PATH) every
test that needs the cluster skips with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from landmarks import storage

REPO = Path(__file__).resolve().parents[2]
CLUSTER_ENV = "LANDMARKS_KIND_CLUSTER"
TRAINER_ENV = "LANDMARKS_KIND_TRAINER_IMAGE"
COMPONENT_ENV = "LANDMARKS_KIND_COMPONENT_IMAGE"
# Where `make deploy` (the chart) runs TFJobs, and where KFP keeps its artifact store.
TRAINING_NAMESPACE = os.environ.get("TRAINING_NS") or "landmarks-training"
KFP_NAMESPACE = os.environ.get("KFP_NAMESPACE") or "kubeflow"
STORE_SECRET = "mlpipeline-minio-artifact"
STORE_BUCKET = "mlpipeline"
# The S3 endpoint pods use (landmarks.storage.s3's default for minio://).
STORE_IN_CLUSTER = f"http://seaweedfs.{KFP_NAMESPACE}:9000"


@pytest.fixture(scope="session")
def cluster() -> str:
    name = os.environ.get(CLUSTER_ENV)
    if not name:
        pytest.skip(
            f"{CLUSTER_ENV} is not set: name a kind cluster made from the offline node image"
        )
    for tool in ("kubectl", "docker"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH")
    return name


def kubectl_run(
    cluster: str, *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """kubectl on the cluster's context; the caller reads the exit status."""
    return subprocess.run(
        ["kubectl", "--context", f"kind-{cluster}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kubectl(cluster: str, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    proc = kubectl_run(cluster, *args, stdin=stdin, timeout=timeout)
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}"
    return proc.stdout


def get_json(cluster: str, *args: str) -> Any:
    return json.loads(kubectl(cluster, "get", *args, "-o", "json"))


def _image(env: str, role: str) -> str:
    image = os.environ.get(env)
    if not image:
        pytest.skip(f"{env} is not set: name a {role} image loaded into the cluster")
    return image


@pytest.fixture(scope="session")
def trainer_image() -> str:
    return _image(TRAINER_ENV, "trainer-cpu")


@pytest.fixture(scope="session")
def component_image() -> str:
    return _image(COMPONENT_ENV, "component")


@pytest.fixture(scope="session")
def training_namespace(cluster: str) -> str:
    """The chart's namespace; the tests need `make deploy` (kind-up) to have made it."""
    found = kubectl_run(cluster, "get", "namespace", TRAINING_NAMESPACE, timeout=60)
    if found.returncode != 0:
        pytest.skip(f"no namespace {TRAINING_NAMESPACE}: run make kind-up (it installs the chart)")
    return TRAINING_NAMESPACE


@dataclass(frozen=True)
class Store:
    """The cluster's artifact store, reached from the host through a port-forward."""

    endpoint: str  # http://127.0.0.1:<port>
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """What a host process needs to read and write minio:// URIs there."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "LANDMARKS_MINIO_ENDPOINT": self.endpoint,
        }


def stop_process(proc: subprocess.Popen[str]) -> None:
    """End a process a test started: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class PortForward:
    """`kubectl port-forward` to 127.0.0.1 on a free port, stopped by its process id."""

    def __init__(self, cluster: str, namespace: str, target: str, port: int) -> None:
        self.proc = subprocess.Popen(
            ["kubectl", "--context", f"kind-{cluster}", "-n", namespace, "port-forward",
             "--address", "127.0.0.1", target, f":{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        # kubectl prints "Forwarding from 127.0.0.1:NNNNN -> PORT" once it listens.
        for _ in range(20):
            line = self.proc.stdout.readline()
            found = re.search(r"127\.0\.0\.1:(\d+)", line)
            if found:
                self.local_port = int(found.group(1))
                return
            if not line:
                break
        self.stop()
        raise AssertionError(f"kubectl port-forward {namespace}/{target} did not start: {line}")

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="session")
def store(cluster: str, training_namespace: str) -> Iterator[Store]:
    """The SeaweedFS of scripts/kind/artifact-store.sh, with the keys of KFP's Secret; the
    host's storage calls in this session go to it (landmarks.storage reads the environment)."""
    secret = get_json(cluster, "secret", "-n", KFP_NAMESPACE, STORE_SECRET)["data"]
    forward = PortForward(cluster, KFP_NAMESPACE, "svc/seaweedfs", 9000)
    found = Store(
        endpoint=f"http://127.0.0.1:{forward.local_port}",
        access_key=base64.b64decode(secret["accesskey"]).decode(),
        secret_key=base64.b64decode(secret["secretkey"]).decode(),
    )
    saved = {name: os.environ.get(name) for name in found.env()}
    os.environ.update(found.env())
    try:
        yield found
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        forward.stop()


def run(*argv: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    assert proc.returncode == 0, f"{' '.join(argv)} failed: {proc.stderr.strip()[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def run_root(store: Store) -> str:
    """A folder of this session in KFP's bucket, as minio:// (what the pods' URIs look like)."""
    return f"minio://{STORE_BUCKET}/kind-tests/{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def split_in_store(tiny_split: Path, run_root: str) -> str:
    """The tiny split uploaded to the cluster's store by the project's storage layer."""
    uri = f"{run_root}/split"
    storage.upload_tree(tiny_split, uri)
    return uri


# The chart's RoleBinding (charts/landmarks-platform/templates/rbac.yaml): its subject is the
# service account KFP runs pipeline pods as, the TFJob launcher among them.
LAUNCHER_BINDING = "landmarks-tfjob-launcher"
CREATED_BY_LABEL = "landmarks.io/created-by"


@dataclass(frozen=True)
class Runner:
    """Where the launcher runs on the cluster: KFP's namespace and pipeline-runner account."""

    namespace: str
    service_account: str


def _pods_running_as(cluster: str, runner: Runner) -> list[str]:
    pods = get_json(cluster, "pods", "-n", runner.namespace)["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if p["spec"].get("serviceAccountName") == runner.service_account
        and p["status"].get("phase") not in ("Succeeded", "Failed")
    ]


@pytest.fixture(scope="session")
def pipeline_runner(cluster: str, training_namespace: str) -> Iterator[Runner]:
    """The service account the chart grants the launcher's rights to, read from the chart's
    RoleBinding (so a test runs as exactly what `make deploy` set up, with nothing extra).

    KFP creates that account when it is installed; on a cluster without KFP (kind-up) the
    session creates it, as KFP would, and deletes it afterwards unless it was applied since
    (KFP installed meanwhile) or a pod of another session still runs as it.
    """
    binding = get_json(cluster, "rolebinding", "-n", training_namespace, LAUNCHER_BINDING)
    accounts = [s for s in binding.get("subjects") or [] if s.get("kind") == "ServiceAccount"]
    assert len(accounts) == 1, f"the chart's RoleBinding should name one account: {binding}"
    runner = Runner(accounts[0]["namespace"], accounts[0]["name"])
    context = ["kubectl", "--context", f"kind-{cluster}", "-n", runner.namespace]
    found = subprocess.run(
        [*context, "get", "serviceaccount", runner.service_account],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    created = False
    if found.returncode != 0:
        made = subprocess.run(
            [*context, "create", "serviceaccount", runner.service_account],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        # Another session may have made it in between: then it is theirs.
        assert made.returncode == 0 or "AlreadyExists" in made.stderr, made.stderr
        created = made.returncode == 0
        if created:
            kubectl(cluster, "-n", runner.namespace, "label", "serviceaccount",
                    runner.service_account, f"{CREATED_BY_LABEL}=kind-tests")  # fmt: skip
    try:
        yield runner
    finally:
        if created:
            account = get_json(cluster, "serviceaccount", "-n", runner.namespace,
                               runner.service_account)  # fmt: skip
            applied = "kubectl.kubernetes.io/last-applied-configuration" in (
                account["metadata"].get("annotations") or {}
            )
            if not applied and not _pods_running_as(cluster, runner):
                kubectl(cluster, "-n", runner.namespace, "delete", "serviceaccount",
                        runner.service_account, "--wait=false")  # fmt: skip
