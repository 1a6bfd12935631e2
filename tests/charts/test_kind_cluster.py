"""manifests/kind-cluster.yaml has a worker that looks like a GKE GPU pool, where the chart's
scheduling defaults send training pods (and nothing else)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.charts.helm import REPO, Helm, training_defaults

KIND_CONFIG = REPO / "manifests" / "kind-cluster.yaml"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def _nodes() -> list[dict[str, Any]]:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    return config["nodes"]


def _taints(node: dict[str, Any]) -> list[dict[str, Any]]:
    taints = []
    for patch in node.get("kubeadmConfigPatches", []):
        doc = yaml.safe_load(patch)
        if doc["kind"] == "JoinConfiguration":
            taints += doc["nodeRegistration"].get("taints", [])
    return taints


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """Kubernetes' matching rule: key (or empty key with Exists), operator, effect."""
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            continue
        if tol.get("key", "") not in ("", taint["key"]):
            continue
        if tol.get("operator", "Equal") == "Exists" or tol.get("value") == taint.get("value"):
            return True
    return False


def _can_schedule(defaults: dict[str, Any], node: dict[str, Any]) -> bool:
    labels = node.get("labels", {})
    selected = all(labels.get(k) == v for k, v in defaults["nodeSelector"].items())
    return selected and all(_tolerates(defaults["tolerations"], t) for t in _taints(node))


def test_gpu_worker_carries_gke_gpu_pool_labels_and_taint() -> None:
    (gpu,) = [
        n
        for n in _nodes()
        if n.get("labels", {}).get("cloud.google.com/gke-nodepool") == "gpu-pool"
    ]
    assert gpu["role"] == "worker"
    assert gpu["labels"]["cloud.google.com/gke-accelerator"]
    assert _taints(gpu) == [GPU_TAINT]


def test_nodes_use_one_image_pinned_by_digest() -> None:
    images = {node["image"] for node in _nodes()}
    assert len(images) == 1
    (image,) = images
    assert image.startswith("kindest/node:v1.35.") and "@sha256:" in image


@pytest.mark.parametrize("profile", ["kind", "gke"])
def test_training_pods_land_on_the_gpu_worker_only(helm: Helm, profile: str) -> None:
    defaults = training_defaults(helm.template(profile))
    fits = [
        n.get("labels", {}).get("cloud.google.com/gke-nodepool")
        for n in _nodes()
        if _can_schedule(defaults, n)
    ]
    assert fits == ["gpu-pool"]


def test_pods_without_the_toleration_stay_off_the_gpu_worker() -> None:
    plain = {"nodeSelector": {}, "tolerations": []}
    pools = [
        n.get("labels", {}).get("cloud.google.com/gke-nodepool")
        for n in _nodes()
        if _can_schedule(plain, n)
    ]
    assert "gpu-pool" not in pools
    assert "default-pool" in pools
