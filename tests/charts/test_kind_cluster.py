"""manifests/kind-cluster.yaml has a worker that looks like a GKE GPU pool.

That the chart's scheduling defaults send training pods there, and pods without the GPU
toleration elsewhere, is the real kube-scheduler's to say: tests/kind/test_gpu_placement.py
builds its fake GPU nodes from this worker's labels and taint.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.charts.helm import REPO

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
