"""make deploy / make undeploy against a real API server: the local test cluster.

Skips unless LANDMARKS_KUBECONFIG names a running cluster (`make test-cluster-up` prints it):
    LANDMARKS_KUBECONFIG=$(...) .venv/bin/python -m pytest tests/deploy/test_deploy_cluster.py
That cluster has the TFJob CRD but no KFP, so deploy runs with TRAINING_OPERATOR=skip and
UPLOAD=0 here (the upload has its own tests against a KFP API server read from kfp-server-api).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from landmarks.storage.s3 import KFP_MINIO_SECRET
from tests.deploy.conftest import REPO

SCRIPTS = REPO / "scripts" / "deploy"


@pytest.fixture
def cluster_env(tmp_path: Path, kubectl_bin: Path) -> dict[str, str]:
    path = os.environ.get("LANDMARKS_KUBECONFIG")
    if not path or not Path(path).is_file():
        pytest.skip("LANDMARKS_KUBECONFIG does not name a running cluster (make test-cluster-up)")
    suffix = uuid.uuid4().hex[:6]
    return {
        **os.environ,
        "KUBECONFIG": path,
        "LANDMARKS_ENV_FILE": str(tmp_path / "no-env.sh"),
        "PYTHON": str(REPO / ".venv" / "bin" / "python"),
        "ENV": "kind",
        "RELEASE": f"smoke-{suffix}",
        "HELM_EXTRA_ARGS": f"--set namespace.name=smoke-training-{suffix}",
        "TRAINING_OPERATOR": "skip",
        "UPLOAD": "0",
        "WAIT_TIMEOUT": "2m",
        "KUBECTL": str(kubectl_bin),
    }


def _run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _kubectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [env["KUBECTL"], *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_deploy_installs_the_chart_and_undeploy_leaves_the_cluster_as_found(
    cluster_env: dict[str, str],
) -> None:
    namespace = cluster_env["HELM_EXTRA_ARGS"].rpartition("=")[2]
    state = f"{cluster_env['RELEASE']}-deploy-state"
    try:
        deployed = _run("deploy.sh", cluster_env)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        again = _run("deploy.sh", cluster_env)  # idempotent
        assert again.returncode == 0, again.stdout + again.stderr
        roles = _kubectl(cluster_env, "-n", namespace, "get", "role", "-o", "name")
        assert "role.rbac.authorization.k8s.io/landmarks-tfjob-launcher" in roles.stdout
        recorded = _kubectl(
            cluster_env, "-n", "default", "get", "configmap", state,
            "-o", "jsonpath={.data.trainingNamespace}",
        )  # fmt: skip
        assert recorded.stdout == namespace

        removed = _run("undeploy.sh", cluster_env)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert f"deleting namespace {namespace}" in removed.stdout
        assert _kubectl(cluster_env, "get", "namespace", namespace).returncode != 0
        assert _kubectl(cluster_env, "-n", "default", "get", "configmap", state).returncode != 0
    finally:
        _kubectl(
            cluster_env, "delete", "namespace", namespace, "--ignore-not-found", "--wait=false"
        )
        _kubectl(cluster_env, "-n", "default", "delete", "configmap", state, "--ignore-not-found")


def test_deploy_copies_kfps_artifact_secret_to_the_training_namespace(
    cluster_env: dict[str, str],
) -> None:
    # TFJob replicas read minio:// artifacts with the keys of KFP's Secret, and a pod can
    # only use a Secret of its own namespace.
    suffix = cluster_env["RELEASE"].rpartition("-")[2]
    training = cluster_env["HELM_EXTRA_ARGS"].rpartition("=")[2]
    kfp = f"smoke-kfp-{suffix}"
    env = {**cluster_env, "KFP_NAMESPACE": kfp}
    secret = KFP_MINIO_SECRET

    def keys(namespace: str) -> str:
        return _kubectl(
            env, "-n", namespace, "get", "secret", secret, "-o", "jsonpath={.data}"
        ).stdout

    def kfp_secret(access: str) -> None:
        created = _kubectl(
            env, "-n", kfp, "create", "secret", "generic", secret,
            f"--from-literal=accesskey={access}", "--from-literal=secretkey=s3cret",
            "--dry-run=client", "-o", "yaml",
        )  # fmt: skip
        applied = subprocess.run(
            [env["KUBECTL"], "apply", "-f", "-"],
            input=created.stdout, env=env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert applied.returncode == 0, applied.stderr

    try:
        assert _kubectl(env, "create", "namespace", kfp).returncode == 0
        kfp_secret("minio")
        deployed = _run("deploy.sh", env)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert f"copying Secret {secret} from {kfp} to {training}" in deployed.stdout
        assert keys(training) == keys(kfp)

        kfp_secret("rotated")  # KFP rotated its keys: the next deploy follows
        again = _run("deploy.sh", env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert keys(training) == keys(kfp) and "cm90YXRlZA" in keys(training)

        removed = _run("undeploy.sh", env)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert _kubectl(env, "get", "namespace", training).returncode != 0
        assert keys(kfp), "undeploy must leave KFP's own Secret alone"
    finally:
        for namespace in (training, kfp):
            _kubectl(env, "delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
        _kubectl(
            env, "-n", "default", "delete", "configmap", f"{env['RELEASE']}-deploy-state",
            "--ignore-not-found",
        )  # fmt: skip
