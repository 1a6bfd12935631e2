"""The landmarks-platform chart on a real cluster: upgrading it again changes nothing.

(`make undeploy` leaving nothing behind is tests/deploy/test_deploy_cluster.py, which the
same `make test-cluster` runs.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from landmarks.tfjob.placement import DEFAULTS_CONFIGMAP
from tests.integration.conftest import CHART, Platform, helm_values


def _versions(core: Any, rbac: Any, namespace: str) -> dict[str, str]:
    objects = {
        "configmap": core.read_namespaced_config_map(DEFAULTS_CONFIGMAP, namespace),
        "serviceaccount": core.read_namespaced_service_account("landmarks-trainer", namespace),
        "role": rbac.read_namespaced_role("landmarks-tfjob-launcher", namespace),
        "rolebinding": rbac.read_namespaced_role_binding("landmarks-tfjob-launcher", namespace),
        "namespace": core.read_namespace(namespace),
    }
    return {kind: obj.metadata.resource_version for kind, obj in objects.items()}


def test_helm_upgrade_with_the_same_values_is_idempotent(
    platform: Platform, helm: Callable[..., Any], core: Any, admin: Any
) -> None:
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(admin)
    before = _versions(core, rbac, platform.namespace)
    manifest = helm("get", "manifest", platform.release, "--namespace", "default").stdout

    values = helm_values(platform.namespace, platform.gpus)
    helm("upgrade", "--install", platform.release, str(CHART), "--namespace", "default", *values)

    assert helm("get", "manifest", platform.release, "--namespace", "default").stdout == manifest
    # Nothing was rewritten on the server: every object keeps its resource version.
    assert _versions(core, rbac, platform.namespace) == before
