"""The chart lints strictly and renders valid Kubernetes objects for every values profile."""

from __future__ import annotations

import tomllib

import kubernetes_validate
import pytest
import yaml

from landmarks.tfjob.launcher import DEFAULT_NAMESPACE
from tests.charts.helm import CHART, KUBE_VERSIONS, PROFILES, RELEASE, REPO, Helm, find

# The chart's default training namespace is where the launcher looks without being told.
TRAINING_NS = DEFAULT_NAMESPACE


@pytest.mark.parametrize("profile", PROFILES)
def test_lint_strict_passes(helm: Helm, profile: str) -> None:
    out = helm.lint(profile).stdout
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_object_matches_the_kubernetes_schema(
    helm: Helm, profile: str, kube_version: str
) -> None:
    objects = helm.template(profile, kube_version=f"{kube_version}.0")
    assert {obj["kind"] for obj in objects} >= {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
    }
    for obj in objects:
        # strict: unknown fields fail too; raises with the object's offending field.
        kubernetes_validate.validate(obj, kube_version, strict=True)


@pytest.mark.parametrize("profile", PROFILES)
def test_every_object_carries_the_standard_labels(helm: Helm, profile: str) -> None:
    for obj in helm.template(profile):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "landmarks-platform"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "landmarks-platform-0.1.0"
        assert labels["app.kubernetes.io/component"]


def test_common_labels_reach_every_object(helm: Helm) -> None:
    for obj in helm.template(set_values=["commonLabels.team=vision"]):
        assert obj["metadata"]["labels"]["team"] == "vision", obj["kind"]


@pytest.mark.parametrize("profile", PROFILES)
def test_everything_but_the_namespace_lives_in_the_training_namespace(
    helm: Helm, profile: str
) -> None:
    for obj in helm.template(profile):
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == TRAINING_NS
            assert "namespace" not in obj["metadata"]
        else:
            assert obj["metadata"]["namespace"] == TRAINING_NS, obj["kind"]


def test_namespace_name_is_a_value(helm: Helm) -> None:
    objects = helm.template("gke", set_values=["namespace.name=vision-train"])
    assert find(objects, "Namespace")["metadata"]["name"] == "vision-train"
    assert {obj["metadata"].get("namespace", "vision-train") for obj in objects} == {"vision-train"}


def test_created_namespace_enforces_restricted_and_survives_uninstall(helm: Helm) -> None:
    ns = find(helm.template(), "Namespace")
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert ns["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    ns = find(helm.template(set_values=["namespace.keepOnUninstall=false"]), "Namespace")
    assert "helm.sh/resource-policy" not in (ns["metadata"].get("annotations") or {})


def test_existing_namespace_is_not_rendered(helm: Helm) -> None:
    objects = helm.template("gke", set_values=["namespace.create=false"])
    assert "Namespace" not in {obj["kind"] for obj in objects}
    assert all(obj["metadata"]["namespace"] == TRAINING_NS for obj in objects)


def test_chart_app_version_is_the_package_version() -> None:
    # Chart.yaml says appVersion is the landmarks version whose launcher reads the ConfigMap.
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
