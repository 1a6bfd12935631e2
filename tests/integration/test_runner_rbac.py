"""What the KFP runner service account may do, asked of the API server's real authorizer.

The launcher runs as `kubeflow/pipeline-runner`; the chart grants it what the launcher needs
in the training namespace, and nothing else anywhere.
"""

from __future__ import annotations

from typing import Any

import pytest

from landmarks.tfjob.placement import DEFAULTS_CONFIGMAP
from tests.integration.conftest import Platform, scripted_job

TFJOBS = ("kubeflow.org", "tfjobs")
# (verb, (group, resource), subresource, resource name): all allowed in the training namespace.
LAUNCHER_NEEDS = [
    *[(verb, TFJOBS, "", "") for verb in ("create", "get", "list", "watch", "patch", "delete")],
    *[(verb, ("", "pods"), "", "") for verb in ("get", "list", "watch")],
    ("get", ("", "pods"), "log", ""),
    ("list", ("", "events"), "", ""),
    ("get", ("", "configmaps"), "", DEFAULTS_CONFIGMAP),
]
NEVER_ALLOWED = [
    ("get", ("", "secrets"), "", ""),
    ("list", ("", "secrets"), "", ""),
    ("create", ("", "pods"), "", ""),
    ("create", ("", "pods"), "exec", ""),
    ("get", ("", "configmaps"), "", "some-other-configmap"),
    ("update", ("", "pods"), "finalizers", ""),
    ("create", ("rbac.authorization.k8s.io", "rolebindings"), "", ""),
]


def _can(
    runner: Any, namespace: str, verb: str, what: tuple[str, str], sub: str, name: str
) -> bool:
    from kubernetes import client

    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace,
                verb=verb,
                group=what[0],
                resource=what[1],
                subresource=sub or None,
                name=name or None,
            )
        )
    )
    return bool(
        client.AuthorizationV1Api(runner).create_self_subject_access_review(review).status.allowed
    )


@pytest.mark.parametrize(("verb", "what", "sub", "name"), LAUNCHER_NEEDS)
def test_runner_may_do_what_the_launcher_needs_in_the_training_namespace(
    platform: Platform, runner: Any, verb: str, what: tuple[str, str], sub: str, name: str
) -> None:
    assert _can(runner, platform.namespace, verb, what, sub, name)


@pytest.mark.parametrize(("verb", "what", "sub", "name"), LAUNCHER_NEEDS)
def test_runner_has_none_of_it_outside_the_training_namespace(
    platform: Platform, runner: Any, verb: str, what: tuple[str, str], sub: str, name: str
) -> None:
    assert not _can(runner, "default", verb, what, sub, name)


@pytest.mark.parametrize(("verb", "what", "sub", "name"), NEVER_ALLOWED)
def test_runner_may_not_read_secrets_create_pods_or_grant_itself_more(
    platform: Platform, runner: Any, verb: str, what: tuple[str, str], sub: str, name: str
) -> None:
    assert not _can(runner, platform.namespace, verb, what, sub, name)


def test_forbidden_requests_are_refused_for_real(platform: Platform, runner: Any) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core, custom = client.CoreV1Api(runner), client.CustomObjectsApi(runner)
    attempts = {
        "list secrets": lambda: core.list_namespaced_secret(platform.namespace),
        "create a pod": lambda: core.create_namespaced_pod(
            platform.namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "x"},
                "spec": {"containers": [{"name": "x", "image": "busybox:1.37"}]},
            },
        ),
        "create a TFJob in default": lambda: custom.create_namespaced_custom_object(
            "kubeflow.org", "v1", "default", "tfjobs", scripted_job("x", namespace="default")
        ),
        "list pods in kube-system": lambda: core.list_namespaced_pod("kube-system"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(ApiException) as refused:
            attempt()
        assert refused.value.status == 403, what
