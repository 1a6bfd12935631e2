"""make deploy / make undeploy against a real API server: the local test cluster.

Skips unless LANDMARKS_KUBECONFIG names a running cluster (`make test-cluster-up` prints it):
    LANDMARKS_KUBECONFIG=$(...) .venv/bin/python -m pytest tests/deploy/test_deploy_cluster.py
That cluster has the TFJob CRD but no KFP, so deploy runs with TRAINING_OPERATOR=skip and
UPLOAD=0 here (the upload has its own tests against a fake KFP API).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

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
