"""Where the real kube-scheduler puts the launcher's TFJob replicas on kind, with a GPU pool
faked beside the real node.

KWOK (the build of scripts/test-cluster/build.sh) runs on this machine against the kind API
server and manages only the two nodes this module creates (a label selector names them): they
have the labels and taint of the GPU worker of manifests/kind-cluster.yaml (GKE's GPU pool) and
one `nvidia.com/gpu` each, and KWOK keeps them Ready. Nothing runs on them: KWOK here only makes
nodes Ready and deletes pods that are being deleted, so the tests look at scheduling alone
(`spec.nodeName`, the PodScheduled condition). The jobs are built as the launcher builds them
(landmarks.tfjob.placement over the chart's ConfigMap as `make deploy` installed it) and created
in the chart's restricted namespace, so their pods pass its Pod Security admission too.

The fake nodes also carry a taint of this run that only this module's pods tolerate, so jobs
of other tests sharing the cluster never land on them. They have no `kubernetes.io/os` label,
so no DaemonSet (kube-proxy selects it) puts a pod there.
"""

from __future__ import annotations

import copy
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from landmarks.tfjob.spec import GPU_RESOURCE
from tests.kind.conftest import REPO, get_json, kubectl, run
from tests.kind.launched_jobs import (
    condition,
    create,
    delete_job,
    describe,
    job_pods,
    launched_job,
)
from tests.support.kube import wait_for

KIND_CONFIG = REPO / "manifests/kind-cluster.yaml"
STAGES = REPO / "scripts/test-cluster/kwok-stages.yaml"
VERSIONS = REPO / "scripts/test-cluster/versions.env"
POOL_LABEL = "cloud.google.com/gke-nodepool"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
# The stages KWOK gets: Ready nodes, kept fresh, and pods that go once deleted. Without
# pod-ready no pod there ever reports Running: nothing would run it.
KWOK_STAGES = ("node-initialize", "node-heartbeat", "pod-delete")
RUN_KEY = "landmarks.test/kwok-run"  # label KWOK selects by, and taint of this run
SCHEDULE_TIMEOUT_S = 90


def kwok_binary() -> Path:
    pins = dict(
        line.split("=", 1)
        for line in VERSIONS.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    cache = Path(os.environ.get("LANDMARKS_CACHE", Path.home() / ".cache/landmarks"))
    path = cache / "test-cluster" / f"kwok-{pins['KWOK_VERSION']}" / "bin/kwok"
    if not os.access(path, os.X_OK):
        pytest.skip(f"no KWOK at {path}: run scripts/test-cluster/build.sh kwok")
    return path


def kind_gpu_worker() -> dict[str, Any]:
    """Labels and taints of the GPU pool's worker in manifests/kind-cluster.yaml."""
    nodes = yaml.safe_load(KIND_CONFIG.read_text())["nodes"]
    (worker,) = [n for n in nodes if n.get("labels", {}).get(POOL_LABEL) == "gpu-pool"]
    taints = [
        taint
        for patch in worker.get("kubeadmConfigPatches", [])
        if (doc := yaml.safe_load(patch))["kind"] == "JoinConfiguration"
        for taint in doc["nodeRegistration"].get("taints", [])
    ]
    return {"labels": worker["labels"], "taints": taints}


@dataclass(frozen=True)
class GpuPool:
    run: str
    nodes: tuple[str, ...]
    real_node: str

    @property
    def toleration(self) -> dict[str, str]:
        """What lets this module's pods (and only them) onto the fake nodes."""
        return {"key": RUN_KEY, "operator": "Equal", "value": self.run, "effect": "NoSchedule"}


def fake_node(name: str, run_id: str) -> dict[str, Any]:
    shape = kind_gpu_worker()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {**shape["labels"], "kubernetes.io/hostname": name, RUN_KEY: run_id},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "spec": {
            "taints": [*shape["taints"], {"key": RUN_KEY, "value": run_id, "effect": "NoSchedule"}]
        },
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", GPU_RESOURCE: "1"},
        },
    }


def node_containers(cluster: str) -> list[str]:
    found = run("docker", "ps", "--filter", f"label=io.x-k8s.kind.cluster={cluster}",
                "--format", "{{.Names}}").split()  # fmt: skip
    assert found, f"no node containers of kind cluster {cluster}"
    return found


def is_ready(node: dict[str, Any]) -> bool:
    return condition(node, "Ready").get("status") == "True"


def real_node_state(cluster: str, node: str) -> dict[str, Any]:
    """What KWOK must leave alone: the real node's kubelet and the kube-system pods on it."""
    found = get_json(cluster, "node", node)
    pods = get_json(cluster, "pods", "-n", "kube-system",
                    "--field-selector", f"spec.nodeName={node}")["items"]  # fmt: skip
    return {
        "ready": is_ready(found),
        "kubelet": found["status"]["nodeInfo"]["kubeletVersion"],
        "pods": {
            p["metadata"]["name"]: (
                p["metadata"]["uid"],
                sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", [])),
                condition(p, "Ready").get("status"),
            )
            for p in pods
        },
    }


class Kwok:
    """The KWOK process, stopped by its process id."""

    def __init__(self, cluster: str, run_id: str, workdir: Path) -> None:
        kubeconfig = workdir / "kubeconfig"
        # The API server at its 127.0.0.1 port, with the admin credentials of kind's context.
        view = ("config", "view", "--minify", "--flatten", "--context", f"kind-{cluster}")
        kubeconfig.write_text(kubectl(cluster, *view))
        stages = workdir / "stages.yaml"
        docs = [d for d in yaml.safe_load_all(STAGES.read_text()) if d]
        chosen = [d for d in docs if d["metadata"]["name"] in KWOK_STAGES]
        assert len(chosen) == len(KWOK_STAGES), f"{STAGES} lacks one of {KWOK_STAGES}"
        stages.write_text(yaml.safe_dump_all(chosen))
        self.log = workdir / "kwok.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [str(kwok_binary()), f"--kubeconfig={kubeconfig}", f"--config={stages}",
                 "--manage-all-nodes=false",
                 f"--manage-nodes-with-label-selector={RUN_KEY}={run_id}",
                 # TEST-NET-1: nothing routes there, and no kubelet is served for it.
                 "--node-ip=192.0.2.1", "--node-lease-duration-seconds=40"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def tail(self) -> str:
        return "\n".join(self.log.read_text().splitlines()[-30:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)


@pytest.fixture(scope="module")
def gpu_pool(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpuPool]:
    (real,) = node_containers(cluster)  # kind names each node after its container
    run_id = uuid.uuid4().hex[:8]
    names = tuple(f"gpu-pool-{run_id}-{i}" for i in range(2))
    before = real_node_state(cluster, real)
    kwok = Kwok(cluster, run_id, tmp_path_factory.mktemp("kwok"))
    try:
        for name in names:
            create(cluster, fake_node(name, run_id))

        def ready() -> bool:
            assert kwok.proc.poll() is None, f"kwok exited:\n{kwok.tail()}"
            nodes = get_json(cluster, "nodes", "-l", f"{RUN_KEY}={run_id}")["items"]
            return len(nodes) == len(names) and all(is_ready(n) for n in nodes)

        wait_for(ready, what="KWOK to make the fake GPU nodes Ready", timeout=60, interval=1)
        yield GpuPool(run_id, names, real)
    finally:
        subprocess.run(["kubectl", "--context", f"kind-{cluster}", "delete", "node", *names,
                        "--ignore-not-found", "--wait=false"],
                       capture_output=True, timeout=60, check=False)  # fmt: skip
        # No kubelet will ever confirm these pods gone: whatever was bound there goes now.
        for name in names:
            pods = get_json(cluster, "pods", "-A", "--field-selector", f"spec.nodeName={name}")
            for pod in pods["items"]:
                subprocess.run(["kubectl", "--context", f"kind-{cluster}", "delete", "pod",
                                "-n", pod["metadata"]["namespace"], pod["metadata"]["name"],
                                "--force", "--grace-period=0", "--ignore-not-found"],
                               capture_output=True, timeout=60, check=False)  # fmt: skip
        kwok.stop()
    after = real_node_state(cluster, real)
    assert after == before, f"the real node or its kube-system pods changed:\n{before}\n{after}"


def scheduled(cluster: str, job: dict[str, Any], replicas: int) -> list[dict[str, Any]]:
    """The job's pods once the scheduler has placed every one of them."""

    def placed() -> list[dict[str, Any]] | None:
        pods = job_pods(cluster, job)
        done = len(pods) == replicas and all(
            condition(p, "PodScheduled").get("status") == "True" for p in pods
        )
        return pods if done else None

    try:
        return wait_for(placed, what=f"{replicas} pod(s) of {job['metadata']['name']} scheduled",
                        timeout=SCHEDULE_TIMEOUT_S, interval=1)  # fmt: skip
    except AssertionError as err:
        raise AssertionError(f"{err}\n{describe(cluster, job_pods(cluster, job))}") from None


@pytest.fixture
def submitted(cluster: str) -> Iterator[list[dict[str, Any]]]:
    """Jobs a test creates, deleted after it."""
    jobs: list[dict[str, Any]] = []
    yield jobs
    for job in jobs:
        delete_job(cluster, job)


def limits(pod: dict[str, Any]) -> dict[str, str]:
    return pod["spec"]["containers"][0].get("resources", {}).get("limits", {})


def test_a_gpu_job_puts_one_worker_on_each_gpu_node(
    cluster: str,
    trainer_image: str,
    training_namespace: str,
    gpu_pool: GpuPool,
    submitted: list[dict[str, Any]],
) -> None:
    job = launched_job(cluster, training_namespace, image=trainer_image, task="gpu-placement",
                       workers=2, gpus_per_worker=1, node_selector=f"{POOL_LABEL}=gpu-pool",
                       task_config={"tolerations": [gpu_pool.toleration]})  # fmt: skip
    create(cluster, job)
    submitted.append(job)

    pods = scheduled(cluster, job, 2)
    # One GPU per node: the scheduler had to count them, so each worker has its own node.
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(gpu_pool.nodes), describe(
        cluster, pods
    )
    for pod in pods:
        assert limits(pod)[GPU_RESOURCE] == "1"
        assert pod["spec"]["nodeSelector"] == {POOL_LABEL: "gpu-pool"}  # the run's pool
        assert pod["spec"]["tolerations"].count(GPU_TOLERATION) == 1, pod["spec"]["tolerations"]
        assert pod["spec"]["serviceAccountName"] == "landmarks-trainer"


def test_the_api_server_gives_a_gpu_pod_the_gpu_toleration_as_gke_does(
    cluster: str, trainer_image: str, training_namespace: str
) -> None:
    job = launched_job(cluster, training_namespace, image=trainer_image, task="gpu-toleration",
                       gpus_per_worker=1)  # fmt: skip
    template = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    spec = copy.deepcopy(template["spec"])
    spec.pop("tolerations")  # what a pod that asks for a GPU and nothing else looks like
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": spec,
           "metadata": {"name": f"gpu-toleration-{uuid.uuid4().hex[:8]}",
                        "namespace": training_namespace}}  # fmt: skip
    dry_run = ("create", "--dry-run=server", "-o", "yaml", "-f", "-")
    admitted = yaml.safe_load(kubectl(cluster, *dry_run, stdin=yaml.safe_dump(pod)))
    # ExtendedResourceToleration (scripts/kind/test-cluster.yaml), which GKE also runs.
    assert GPU_TOLERATION in admitted["spec"]["tolerations"], admitted["spec"]["tolerations"]


def test_a_job_without_parameters_goes_to_the_charts_pool(
    cluster: str,
    trainer_image: str,
    training_namespace: str,
    gpu_pool: GpuPool,
    submitted: list[dict[str, Any]],
) -> None:
    # The suite's chart values (scripts/kind/test-values.yaml) name the default pool: the one
    # real node. The job tolerates the fake nodes; only the chart's selector keeps it off them.
    job = launched_job(cluster, training_namespace, image=trainer_image, task="chart-placement",
                       task_config={"tolerations": [gpu_pool.toleration],
                                    "resources": {"requests": {"cpu": "10m"}}})  # fmt: skip
    create(cluster, job)
    submitted.append(job)

    (pod,) = scheduled(cluster, job, 1)
    delete_job(cluster, job)  # it would only start a trainer with no data
    assert pod["spec"]["nodeSelector"] == {POOL_LABEL: "default-pool"}, pod["spec"]
    assert pod["spec"]["nodeName"] == gpu_pool.real_node, describe(cluster, [pod])
    # The chart installed by make kind-up asks for no GPU (training.gpusPerWorker=0).
    assert GPU_RESOURCE not in limits(pod)


def test_a_cpu_job_runs_on_the_real_node_and_never_on_the_gpu_pool(
    cluster: str,
    trainer_image: str,
    training_namespace: str,
    gpu_pool: GpuPool,
    submitted: list[dict[str, Any]],
) -> None:
    # It may tolerate the fake nodes: only its placement may keep it off them. A small CPU
    # request, so that other tests' pods on this 2-core node cannot leave it Pending.
    job = launched_job(
        cluster, training_namespace, image=trainer_image, task="cpu-placement",
        gpus_per_worker=0, node_selector=f"{POOL_LABEL}=default-pool",
        task_config={"tolerations": [gpu_pool.toleration],
                     "resources": {"requests": {"cpu": "10m"}}},
    )  # fmt: skip
    create(cluster, job)
    submitted.append(job)

    (pod,) = scheduled(cluster, job, 1)
    # Deleted at once: it would only start a trainer with no data.
    delete_job(cluster, job)
    assert pod["spec"]["nodeName"] == gpu_pool.real_node, describe(cluster, [pod])
    assert not [k for k in limits(pod) if k.endswith("/gpu")], limits(pod)


def test_a_pod_without_the_gpu_toleration_stays_off_the_gpu_pool(
    cluster: str, trainer_image: str, training_namespace: str, gpu_pool: GpuPool
) -> None:
    job = launched_job(cluster, training_namespace, image=trainer_image, task="no-toleration",
                       node_selector=f"{POOL_LABEL}=gpu-pool",
                       task_config={"tolerations": [gpu_pool.toleration]})  # fmt: skip
    spec = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    spec["tolerations"] = [gpu_pool.toleration]  # the chart's GPU toleration taken away
    name = f"no-toleration-{gpu_pool.run}"
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": spec,
           "metadata": {"name": name, "namespace": training_namespace}}  # fmt: skip
    create(cluster, pod)
    try:

        def refused() -> dict[str, Any] | None:
            found = condition(get_json(cluster, "pod", "-n", training_namespace, name),
                              "PodScheduled")  # fmt: skip
            return found if found.get("reason") == "Unschedulable" else None

        why = wait_for(refused, what=f"the scheduler to refuse {name}",
                       timeout=SCHEDULE_TIMEOUT_S, interval=1)  # fmt: skip
    finally:
        kubectl(cluster, "delete", "pod", "-n", training_namespace, name, "--wait=false")
    # It tolerates this run's taint: what keeps it off both fake nodes is the GPU taint (the
    # GPU job of test_a_gpu_job_puts_one_worker_on_each_gpu_node, which keeps the chart's
    # toleration, lands there); the real node is not in the pool it asks for.
    assert f"{len(gpu_pool.nodes)} node(s) had untolerated taint" in why["message"], why


def test_kwok_leaves_the_real_node_alone(cluster: str, gpu_pool: GpuPool) -> None:
    node = get_json(cluster, "node", gpu_pool.real_node)
    assert is_ready(node), node["status"]["conditions"]
    assert condition(node, "Ready")["reason"] == "KubeletReady"
    assert not node["status"]["nodeInfo"]["kubeletVersion"].startswith("kwok")
    lease = get_json(cluster, "lease", "-n", "kube-node-lease", gpu_pool.real_node)
    assert lease["spec"]["holderIdentity"] == gpu_pool.real_node
