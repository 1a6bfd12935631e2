"""What `make kind-up` installed is in place on the kind cluster: the landmarks-platform release
deployed by the real helm with every object of its manifest live and unchanged since, and the
training-operator built here running Ready from the image of scripts/kind/training-operator.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.kind.conftest import REPO, get_json, run

CHART = REPO / "charts/landmarks-platform"
# scripts/deploy/deploy.sh's defaults, overridable as there (make exports these empty when unset).
RELEASE = os.environ.get("RELEASE") or "landmarks"
HELM_NAMESPACE = os.environ.get("HELM_NAMESPACE") or "default"
OPERATOR_LABEL = "control-plane=kubeflow-training-operator"


@pytest.fixture(scope="module")
def helm(cluster: str) -> Callable[..., str]:
    if shutil.which("helm") is None:
        pytest.skip("helm is not on PATH (scripts/k8s-tools.sh puts the pinned one there)")

    def call(*args: str) -> str:
        return run("helm", "--kube-context", f"kind-{cluster}", *args, timeout=120)

    return call


@pytest.fixture(scope="module")
def release_objects(helm: Callable[..., str]) -> list[dict[str, Any]]:
    manifest = helm("get", "manifest", RELEASE, "--namespace", HELM_NAMESPACE)
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def test_the_release_is_deployed_from_this_chart(helm: Callable[..., str]) -> None:
    releases = json.loads(helm("list", "--all-namespaces", "--output", "json"))
    found = [r for r in releases if r["name"] == RELEASE and r["namespace"] == HELM_NAMESPACE]
    assert len(found) == 1, releases
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert found[0]["status"] == "deployed", found[0]
    assert found[0]["chart"] == f"{chart['name']}-{chart['version']}", found[0]
    assert found[0]["app_version"] == chart["appVersion"], found[0]


def test_every_object_of_the_release_is_live_and_as_rendered(
    cluster: str, release_objects: list[dict[str, Any]]
) -> None:
    kinds = {o["kind"] for o in release_objects}
    assert {"Namespace", "ServiceAccount", "ConfigMap", "Role", "RoleBinding"} <= kinds, kinds
    for obj in release_objects:
        meta = obj["metadata"]
        where = ["-n", meta["namespace"]] if meta.get("namespace") else []
        live = get_json(cluster, obj["kind"].lower(), meta["name"], *where)
        owner = live["metadata"].get("annotations", {}).get("meta.helm.sh/release-name")
        assert owner == RELEASE, f"{obj['kind']} {meta['name']} belongs to {owner!r}"
        # The namespace's Pod Security labels among them.
        labels = live["metadata"].get("labels", {})
        assert meta.get("labels", {}).items() <= labels.items(), (meta.get("labels"), labels)
        # What the launcher and the API server read: edited by hand since, it would differ.
        for key in ("data", "rules", "subjects", "roleRef", "automountServiceAccountToken"):
            assert live.get(key) == obj.get(key), f"{obj['kind']} {meta['name']}: {key}"


def test_the_operator_built_here_is_ready(cluster: str) -> None:
    ref = run(str(REPO / "scripts/kind/training-operator.sh"), "--print-ref").strip()
    pods = get_json(cluster, "pods", "-n", "kubeflow", "-l", OPERATOR_LABEL)["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    (container,) = pods[0]["spec"]["containers"]
    (status,) = pods[0]["status"]["containerStatuses"]
    assert container["image"] == ref, container["image"]
    assert status["ready"] is True, pods[0]["status"]
    # The image the node runs is the one Docker holds here (built, then loaded), not a pull.
    built = subprocess.run(
        ["docker", "image", "inspect", ref, "--format", "{{.Id}}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if built.returncode != 0:
        pytest.skip(f"{ref} is not in this machine's Docker: {built.stderr.strip()}")
    node = pods[0]["spec"]["nodeName"]  # kind names the node after its container
    on_node = json.loads(run("docker", "exec", node, "crictl", "inspecti", status["image"]))
    assert on_node["status"]["id"] == built.stdout.strip(), (on_node["status"], built.stdout)
