"""The integration suite: the charts and the TFJob launcher against a real cluster.

Any cluster: LANDMARKS_KUBECONFIG names an admin kubeconfig of the local test cluster
(`make test-cluster`), of kind (`make kind-up`) or of a real one; without it every test here
skips with that reason. The suite installs the landmarks-platform chart with the real helm
into a fresh training namespace, then runs the launcher as the KFP runner service account
(`kubeflow/pipeline-runner`) with that account's own token (TokenRequest API), never as admin.

The jobs run `sh -c` in a busybox image that sleeps and exits as told; on the local test
cluster KWOK plays the same script from the pod annotations `landmarks.test/run-for` and
`landmarks.test/exit-code`, so the tests mean the same thing on both.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from landmarks.tfjob import TFJobSpec
from tests.support.kube import kubeconfig_or_skip, wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "landmarks-platform"
RUNNER_NAMESPACE = "kubeflow"
RUNNER = "pipeline-runner"
GPU_POOL = ("cloud.google.com/gke-nodepool", "gpu-pool")
GPU = "nvidia.com/gpu"
IMAGE = "busybox:1.37"
SCRIPT = 'echo "replica $HOSTNAME started"; sleep "$RUN_SECONDS"; exit "$EXIT_CODE"'


@dataclass(frozen=True)
class Platform:
    """The chart as installed for this session, and who the launcher runs as."""

    release: str
    namespace: str
    gpus: int  # GPUs per worker the chart's defaults request (0 where the cluster has none)
    gpu_nodes: frozenset[str]
    other_nodes: frozenset[str]
    runner_kubeconfig: Path


@pytest.fixture(scope="session")
def admin_kubeconfig() -> Path:
    return kubeconfig_or_skip(
        "run `make test-cluster` (local control plane), or set it to the admin kubeconfig of "
        "kind or a real cluster"
    )


@pytest.fixture(scope="session")
def admin(admin_kubeconfig: Path) -> Any:
    """A client with the admin kubeconfig: for setting up and for checking, not launching."""
    from kubernetes import config

    return config.new_client_from_config(config_file=str(admin_kubeconfig))


@pytest.fixture(scope="session")
def core(admin: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(admin)


@pytest.fixture(scope="session")
def custom(admin: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(admin)


@pytest.fixture(scope="session")
def helm(admin_kubeconfig: Path, k8s_bin: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """The pinned helm (scripts/k8s-tools.sh), talking to the cluster as admin."""
    binary = k8s_bin / "helm"
    env = {**os.environ, "KUBECONFIG": str(admin_kubeconfig)}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(binary), *args], env=env, capture_output=True, text=True, timeout=300
        )
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    return run


@pytest.fixture(scope="session")
def runner_account(core: Any) -> Iterator[None]:
    """KFP's runner service account; created (and removed afterwards) where KFP is absent."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    created: list[Callable[[], Any]] = []
    try:
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=RUNNER_NAMESPACE))
        )
        created.append(lambda: core.delete_namespace(RUNNER_NAMESPACE))
    except ApiException as err:
        if err.status != 409:
            raise
    try:
        core.create_namespaced_service_account(
            RUNNER_NAMESPACE, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=RUNNER))
        )
        created.append(lambda: core.delete_namespaced_service_account(RUNNER, RUNNER_NAMESPACE))
    except ApiException as err:
        if err.status != 409:
            raise
    yield
    for undo in reversed(created):
        with contextlib.suppress(ApiException):
            undo()


@pytest.fixture(scope="session")
def runner_kubeconfig(
    core: Any, admin_kubeconfig: Path, runner_account: None, tmp_path_factory: Any
) -> Path:
    """A kubeconfig that authenticates with a token of the runner service account itself."""
    from kubernetes import client

    token = core.create_namespaced_service_account_token(
        RUNNER,
        RUNNER_NAMESPACE,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    admin_config = yaml.safe_load(admin_kubeconfig.read_text())
    context_name = admin_config["current-context"]
    context = next(c for c in admin_config["contexts"] if c["name"] == context_name)["context"]
    cluster = next(c for c in admin_config["clusters"] if c["name"] == context["cluster"])
    runner = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": RUNNER, "user": {"token": token}}],
        "contexts": [{"name": RUNNER, "context": {"cluster": cluster["name"], "user": RUNNER}}],
        "current-context": RUNNER,
    }
    path = tmp_path_factory.mktemp("runner") / "kubeconfig"
    path.write_text(yaml.safe_dump(runner))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def runner(runner_kubeconfig: Path) -> Any:
    """The API client the launcher uses in these tests: the runner's identity."""
    from landmarks.tfjob.launcher import load_api_client

    return load_api_client(runner_kubeconfig)


def helm_values(namespace: str, gpus: int) -> list[str]:
    """The chart's defaults, sized for any cluster (busybox replicas need little)."""
    values = {
        "namespace.name": namespace,
        "namespace.keepOnUninstall": "false",
        "pipelineRunner.serviceAccount": RUNNER,
        "pipelineRunner.namespace": RUNNER_NAMESPACE,
        "training.gpusPerWorker": str(gpus),
        "training.resources.requests.cpu": "100m",
        "training.resources.requests.memory": "64Mi",
        "training.resources.limits.memory": "128Mi",
    }
    args: list[str] = []
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    return args


@pytest.fixture(scope="session")
def platform(core: Any, helm: Callable[..., Any], runner_kubeconfig: Path) -> Iterator[Platform]:
    """The landmarks-platform chart installed with helm into a fresh training namespace."""
    nodes = core.list_node().items
    gpu_nodes = frozenset(
        n.metadata.name for n in nodes if (n.metadata.labels or {}).get(GPU_POOL[0]) == GPU_POOL[1]
    )
    if not gpu_nodes:
        pytest.skip(f"no node of the GPU pool ({GPU_POOL[0]}={GPU_POOL[1]}) in this cluster")
    has_gpus = any(
        int((n.status.allocatable or {}).get(GPU, "0")) > 0
        for n in nodes
        if n.metadata.name in gpu_nodes
    )
    suffix = uuid.uuid4().hex[:6]
    platform = Platform(
        release=f"it-{suffix}",
        namespace=f"it-training-{suffix}",
        gpus=1 if has_gpus else 0,
        gpu_nodes=gpu_nodes,
        other_nodes=frozenset(n.metadata.name for n in nodes) - gpu_nodes,
        runner_kubeconfig=runner_kubeconfig,
    )
    install = ["upgrade", "--install", platform.release, str(CHART), "--namespace", "default"]
    install += ["--wait", "--timeout", "2m", *helm_values(platform.namespace, platform.gpus)]
    try:
        helm(*install)
        wait_for(
            lambda: any(
                sa.metadata.name == "default"
                for sa in core.list_namespaced_service_account(platform.namespace).items
            ),
            what=f"the default service account of {platform.namespace}",
        )
        yield platform
    finally:
        helm("uninstall", platform.release, "--namespace", "default", "--wait", check=False)
        with contextlib.suppress(Exception):
            core.delete_namespace(platform.namespace)


def scripted_job(
    name: str,
    *,
    workers: int = 2,
    seconds: float = 2,
    exit_code: int = 0,
    **spec: Any,
) -> dict[str, Any]:
    """A TFJob whose replicas sleep `seconds` and exit `exit_code` (busybox, or KWOK)."""
    manifest = TFJobSpec(
        name=name,
        image=IMAGE,
        command=["sh", "-c", SCRIPT],
        workers=workers,
        **spec,
    ).to_manifest()
    set_behaviour(manifest, seconds=seconds, exit_code=exit_code)
    return manifest


def set_behaviour(manifest: dict[str, Any], *, seconds: float, exit_code: int) -> dict[str, Any]:
    """How every replica ends: the script's env, and KWOK's annotations."""
    for replica in manifest["spec"]["tfReplicaSpecs"].values():
        template = replica["template"]
        template.setdefault("metadata", {}).setdefault("annotations", {}).update(
            {"landmarks.test/run-for": f"{seconds:g}s", "landmarks.test/exit-code": str(exit_code)}
        )
        container = template["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        env["RUN_SECONDS"] = {"name": "RUN_SECONDS", "value": f"{seconds:g}"}
        env["EXIT_CODE"] = {"name": "EXIT_CODE", "value": str(exit_code)}
        container["env"] = list(env.values())
    return manifest


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def get_tfjob(custom: Any, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return custom.get_namespaced_custom_object("kubeflow.org", "v1", namespace, "tfjobs", name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
