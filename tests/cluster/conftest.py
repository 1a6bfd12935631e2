"""Fixtures for tests that need the local test cluster (`make test-cluster-smoke`).

Tests here skip, with the reason, unless LANDMARKS_KUBECONFIG names the kubeconfig of a running
cluster; `make test-cluster-up` prints that path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.kube import kubeconfig_or_skip, wait_for


@pytest.fixture(scope="session")
def api_client() -> Any:
    """A client of the cluster named by LANDMARKS_KUBECONFIG (admin rights)."""
    path = kubeconfig_or_skip("start the cluster with `make test-cluster-smoke`")
    from kubernetes import config

    return config.new_client_from_config(config_file=str(path))


@pytest.fixture(scope="session")
def core(api_client: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="session")
def cluster_info(core: Any) -> dict[str, str]:
    """What `testcluster.py up` published in kube-public/landmarks-test-cluster."""
    return core.read_namespaced_config_map("landmarks-test-cluster", "kube-public").data


@pytest.fixture
def operator_running(cluster_info: dict[str, str]) -> None:
    state = cluster_info.get("training-operator", "absent")
    if state != "running":
        pytest.skip(f"the training-operator is not running in the test cluster: {state}")


@pytest.fixture
def namespace(core: Any) -> Iterator[str]:
    """A fresh namespace with its default service account; deleted afterwards."""
    from kubernetes import client

    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        # The controller-manager creates the account; pods are rejected until it exists.
        wait_for(
            lambda: any(
                sa.metadata.name == "default"
                for sa in core.list_namespaced_service_account(name).items
            ),
            what=f"the default service account in {name}",
        )
        yield name
    finally:
        core.delete_namespace(name)
