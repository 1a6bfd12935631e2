"""The KFP runner gets what the TFJob launcher needs in the training namespace, and no more."""

from __future__ import annotations

import pytest

from landmarks.tfjob.placement import DEFAULTS_CONFIGMAP
from tests.charts.helm import PROFILES, Helm, find

# (apiGroup, resource) -> verbs, as the launcher uses them.
LAUNCHER_RULES = {
    ("kubeflow.org", "tfjobs"): {"create", "get", "list", "watch", "patch", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "pods/log"): {"get"},
    ("", "events"): {"get", "list", "watch"},
    ("", "configmaps"): {"get"},
}


def _rules(role: dict) -> dict[tuple[str, str], set[str]]:
    flat: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                flat.setdefault((group, resource), set()).update(rule["verbs"])
    return flat


@pytest.mark.parametrize("profile", PROFILES)
def test_launcher_role_grants_exactly_the_launcher_verbs(helm: Helm, profile: str) -> None:
    role = find(helm.template(profile), "Role", "landmarks-tfjob-launcher")
    assert _rules(role) == LAUNCHER_RULES
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]


def test_configmap_access_is_limited_to_the_training_defaults(helm: Helm) -> None:
    role = find(helm.template(), "Role", "landmarks-tfjob-launcher")
    (rule,) = [r for r in role["rules"] if "configmaps" in r["resources"]]
    assert rule["resourceNames"] == [DEFAULTS_CONFIGMAP]


@pytest.mark.parametrize("profile", PROFILES)
def test_nothing_cluster_scoped_is_granted(helm: Helm, profile: str) -> None:
    kinds = {obj["kind"] for obj in helm.template(profile)}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}


def test_role_is_bound_to_the_default_kfp_runner(helm: Helm) -> None:
    binding = find(helm.template(), "RoleBinding", "landmarks-tfjob-launcher")
    assert binding["metadata"]["namespace"] == "landmarks-training"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "landmarks-tfjob-launcher",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
    ]


def test_role_is_bound_to_the_configured_runner(helm: Helm) -> None:
    objects = helm.template(
        set_values=["pipelineRunner.serviceAccount=kfp-steps", "pipelineRunner.namespace=ml"]
    )
    binding = find(objects, "RoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kfp-steps", "namespace": "ml"}
    ]
