"""A kind cluster made from the offline node image (scripts/kind/node-image.sh) works: its
nodes run that image and the pinned Kubernetes, CoreDNS and kube-proxy are ready, pods reach
each other across nodes by pod IP and by Service name (the image's static bridge network), and
the project's trainer image runs as uid 1000 and imports TensorFlow.

LANDMARKS_KIND_CLUSTER names the cluster (e.g. one made with
`make kind-up KIND_NODE_IMAGE=landmarks-kind/node:v1.36.3`); without it every test skips.
LANDMARKS_KIND_TRAINER_IMAGE names a trainer-cpu image already loaded into it
(`kind load docker-image`); without it the trainer test skips.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.kind.conftest import REPO, TRAINER_ENV, get_json, kubectl
from tests.support.kube import wait_for

NODE_IMAGE_REPO = "landmarks-kind/node"


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for name in ("scripts/test-cluster/versions.env", "scripts/kind/versions.env"):
        for line in (REPO / name).read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                pins[key.strip()] = value.strip()
    return pins


@pytest.fixture(scope="module")
def namespace(cluster: str) -> Iterator[str]:
    name = f"kind-offline-{uuid.uuid4().hex[:8]}"
    kubectl(cluster, "create", "namespace", name)
    try:
        yield name
    finally:
        kubectl(cluster, "delete", "namespace", name, "--wait=false")


def pod_phase(cluster: str, namespace: str, name: str) -> str:
    return get_json(cluster, "-n", namespace, "pod", name)["status"].get("phase", "")


def run_pod(cluster: str, namespace: str, spec: dict[str, Any], timeout: float = 120) -> str:
    """Apply a pod that runs to completion; return its logs once it Succeeded."""
    name = spec["metadata"]["name"]
    spec = {"apiVersion": "v1", "kind": "Pod", **spec}
    kubectl(cluster, "-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(spec))
    phase = wait_for(
        lambda: (
            pod_phase(cluster, namespace, name) in ("Succeeded", "Failed")
            and pod_phase(cluster, namespace, name)
        ),
        what=f"pod {name} to finish",
        timeout=timeout,
        interval=1,
    )
    logs = kubectl(cluster, "-n", namespace, "logs", name)
    assert phase == "Succeeded", f"pod {name} {phase}: {logs}"
    return logs


def test_nodes_run_the_offline_image_and_the_pinned_kubernetes(cluster: str) -> None:
    pins = _pins()
    nodes = get_json(cluster, "nodes")["items"]
    assert nodes, "the cluster has no nodes"
    for node in nodes:
        name = node["metadata"]["name"]
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", f"node {name} is not Ready"
        assert node["status"]["nodeInfo"]["kubeletVersion"] == pins["KUBERNETES_VERSION"]
        image = subprocess.run(
            ["docker", "inspect", "--format", "{{.Config.Image}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert image.startswith(f"{NODE_IMAGE_REPO}:"), f"node {name} runs {image}"


def test_coredns_and_kube_proxy_are_ready(cluster: str) -> None:
    kubectl(
        cluster, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=120s"
    )
    kubectl(
        cluster, "-n", "kube-system", "rollout", "status", "daemonset/kube-proxy", "--timeout=120s"
    )


def test_pods_reach_each_other_across_nodes_by_ip_and_service(cluster: str, namespace: str) -> None:
    pins = _pins()
    # kube-proxy's image is preloaded on every node and has Python: no image to load.
    image = f"registry.k8s.io/kube-proxy:{pins['KUBERNETES_VERSION']}"
    nodes = [n["metadata"]["name"] for n in get_json(cluster, "nodes")["items"]]
    server_node, client_node = nodes[0], nodes[-1]
    everywhere = [{"operator": "Exists"}]  # control-plane and GPU-pool taints
    server = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "nodeName": server_node,
            "tolerations": everywhere,
            "containers": [
                {
                    "name": "web",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-m", "http.server", "8080"],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    for obj in (server, service):
        kubectl(cluster, "-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(obj))
    kubectl(cluster, "-n", namespace, "wait", "--for=condition=Ready", "pod/web", "--timeout=60s")
    ip = get_json(cluster, "-n", namespace, "pod", "web")["status"]["podIP"]
    urls = [f"http://{ip}:8080/", f"http://web.{namespace}.svc.cluster.local/"]
    # A new Service answers once kube-proxy has written its rules, a moment after the pod is
    # Ready (seen: "connection refused" on the Service, the pod IP already answering); the
    # client retries for a bounded 30 s, as a client of a new Service would.
    script = (
        "import sys, time, urllib.request as u\n"
        "for url in sys.argv[1:]:\n"
        "    deadline = time.monotonic() + 30\n"
        "    while True:\n"
        "        try:\n"
        "            print(url, u.urlopen(url, timeout=5).status)\n"
        "            break\n"
        "        except OSError:\n"
        "            if time.monotonic() > deadline:\n"
        "                raise\n"
        "            time.sleep(1)\n"
    )
    logs = run_pod(
        cluster,
        namespace,
        {
            "metadata": {"name": "client"},
            "spec": {
                "nodeName": client_node,
                "tolerations": everywhere,
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "client",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": ["python3", "-c", script, *urls],
                    }
                ],
            },
        },
    )
    assert logs.split() == [urls[0], "200", urls[1], "200"], logs


def test_trainer_image_runs_as_uid_1000_and_imports_tensorflow(
    cluster: str, namespace: str
) -> None:
    image = os.environ.get(TRAINER_ENV)
    if not image:
        pytest.skip(f"{TRAINER_ENV} is not set: name a trainer-cpu image loaded with kind load")
    logs = run_pod(
        cluster,
        namespace,
        {
            "metadata": {"name": "trainer"},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 1000,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "trainer",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": [
                            "sh",
                            "-c",
                            "id -u; python -c "
                            "'import tensorflow as tf; print(\"tensorflow\", tf.__version__)'",
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        },
        timeout=300,
    )
    lines = [line for line in logs.splitlines() if line.strip()]
    assert lines[0] == "1000", logs
    assert lines[-1].startswith("tensorflow "), logs
