"""The restricted Pod Security Standard of the chart's training namespace, as a real kubelet and
container runtime carry it out on kind.

tests/integration/test_pod_security.py already has the API server judge the launcher's replica
pods and refuse one pod per rule (dry runs). What only real pods show is here:

- a TFJob built as the launcher builds it (the chart's ConfigMap as `make deploy` installed it),
  whose replica pod the training-operator creates in the namespace: it starts on the
  `trainer-cpu` image and sees, from inside, what the runtime applied: uid and gid 1000, the
  fsGroup, seccomp in filter mode, no new privileges, no capability, a read-only root with a
  writable scratch `HOME`; `crictl inspect` on the node shows the same in the OCI spec;
- the project's images declare a numeric non-root user: under `runAsNonRoot` with no
  `runAsUser` the kubelet starts them, and refuses an image that would run as root (a check
  admission cannot make: it does not know the image);
- a pod without a seccomp profile is refused by a real create (not a dry run), with the API
  server's message naming the rule.

The probe replaces the replica's command (it only reads its own process state and exits), so
no training runs; everything else is the launcher's pod.
"""

from __future__ import annotations

import copy
import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.kind.conftest import COMPONENT_ENV, TRAINER_ENV, get_json, kubectl, run
from tests.kind.launched_jobs import (
    create,
    delete_job,
    describe,
    job_pods,
    launched_job,
)
from tests.support.kube import wait_for

PSS_LABEL = "pod-security.kubernetes.io/enforce"
POOL = "cloud.google.com/gke-nodepool=default-pool"  # the real node's pool
START_TIMEOUT_S = 180
# Prints, as one JSON line, what the process is allowed: ids, seccomp, capabilities, and
# whether it can write to / and to its HOME (errno names, or "ok").
PROBE = r"""
import errno, json, os
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
def write(folder):
    try:
        with open(os.path.join(folder, ".probe"), "w") as out:
            out.write("x")
        return "ok"
    except OSError as err:
        return errno.errorcode.get(err.errno, str(err.errno))
print("PROBE " + json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
    "seccomp": status["Seccomp"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
    "home": os.environ.get("HOME"), "root": write("/"), "write_home": write(os.environ["HOME"]),
}))
"""


def probed(pod_or_template: dict[str, Any]) -> None:
    """The probe in place of the `tensorflow` container's command."""
    container = pod_or_template["spec"]["containers"][0]
    container["command"] = ["python", "-c", PROBE]
    container["args"] = []


def probe_output(cluster: str, namespace: str, name: str) -> dict[str, Any]:
    logs = kubectl(cluster, "logs", "-n", namespace, name)
    lines = [line for line in logs.splitlines() if line.startswith("PROBE ")]
    assert lines, f"no probe line in the log of {name}:\n{logs}"
    return json.loads(lines[-1].removeprefix("PROBE "))


def finished(cluster: str, namespace: str, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        pod = get_json(cluster, "pod", "-n", namespace, name)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None

    try:
        return wait_for(done, what=f"pod {name} to finish", timeout=START_TIMEOUT_S, interval=1)
    except AssertionError as err:
        pod = get_json(cluster, "pod", "-n", namespace, name)
        raise AssertionError(f"{err}\n{describe(cluster, [pod])}\n{pod['status']}") from None


@pytest.fixture
def pod_names(cluster: str, training_namespace: str) -> Iterator[list[str]]:
    """Pods a test creates in the training namespace, deleted after it."""
    names: list[str] = []
    yield names
    for name in names:
        kubectl(cluster, "delete", "pod", "-n", training_namespace, name, "--ignore-not-found",
                "--wait=false")  # fmt: skip


def replica_pod(
    cluster: str, namespace: str, image: str, name: str, names: list[str]
) -> dict[str, Any]:
    """The launcher's worker pod (on the real node's pool, a small CPU request so that other
    tests' pods on the 2-core node cannot leave it Pending), named `name`, to be created."""
    job = launched_job(
        cluster, namespace, image=image, task="pss-pod", gpus_per_worker=0, node_selector=POOL,
        task_config={"resources": {"requests": {"cpu": "10m"}}},
    )  # fmt: skip
    template = copy.deepcopy(job["spec"]["tfReplicaSpecs"]["Worker"]["template"])
    template["spec"]["restartPolicy"] = "Never"
    names.append(name)
    metadata = {**template.get("metadata", {}), "name": name, "namespace": namespace}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def test_the_training_namespace_enforces_restricted(cluster: str, training_namespace: str) -> None:
    labels = get_json(cluster, "namespace", training_namespace)["metadata"]["labels"]
    assert labels.get(PSS_LABEL) == "restricted", labels


def test_the_operators_replica_pod_runs_as_the_restricted_profile_says(
    cluster: str, trainer_image: str, training_namespace: str
) -> None:
    job = launched_job(
        cluster, training_namespace, image=trainer_image, task="pss-replica",
        gpus_per_worker=0, node_selector=POOL,
        task_config={"resources": {"requests": {"cpu": "10m"}}},
    )  # fmt: skip
    template = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]
    probed(template)
    create(cluster, job)
    try:
        pods = wait_for(lambda: job_pods(cluster, job), what="the operator to create the pod",
                        timeout=60, interval=1)  # fmt: skip
        (name,) = [p["metadata"]["name"] for p in pods]
        pod = finished(cluster, training_namespace, name)
        seen = probe_output(cluster, training_namespace, name)
        assert pod["status"]["phase"] == "Succeeded", (pod["status"], seen)
        (status,) = pod["status"]["containerStatuses"]
        container_id = status["containerID"].split("://", 1)[1]
        node = pod["spec"]["nodeName"]  # kind names the node after its container
        inspected = json.loads(run("docker", "exec", node, "crictl", "inspect", container_id))
    finally:
        delete_job(cluster, job)

    defaults = template["spec"]["securityContext"]
    assert (seen["uid"], seen["gid"]) == (defaults["runAsUser"], defaults["runAsGroup"]), seen
    assert defaults["fsGroup"] in seen["groups"], seen
    assert seen["seccomp"] == "2", seen  # SECCOMP_MODE_FILTER: RuntimeDefault took effect
    assert seen["no_new_privs"] == "1", seen  # allowPrivilegeEscalation: false
    assert int(seen["cap_eff"], 16) == 0 and int(seen["cap_bnd"], 16) == 0, seen  # drop ALL
    assert seen["root"] == "EROFS", seen  # readOnlyRootFilesystem
    assert seen["write_home"] == "ok", seen  # the chart's scratch emptyDir

    spec = inspected["info"]["runtimeSpec"]
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO", spec["linux"]
    assert spec["linux"]["seccomp"]["syscalls"], "an allow-list, not an empty profile"
    assert spec["process"]["noNewPrivileges"] is True
    assert spec["process"]["user"]["uid"] == defaults["runAsUser"]
    assert not spec["process"].get("capabilities", {}).get("bounding"), spec["process"]
    assert spec["root"].get("readonly") is True, spec["root"]


@pytest.mark.parametrize("env", [TRAINER_ENV, COMPONENT_ENV], ids=["trainer-cpu", "component"])
def test_the_images_start_under_run_as_non_root_alone(
    cluster: str,
    training_namespace: str,
    pod_names: list[str],
    env: str,
    request: pytest.FixtureRequest,
) -> None:
    image = request.getfixturevalue("trainer_image" if env == TRAINER_ENV else "component_image")
    name = f"pss-image-{uuid.uuid4().hex[:8]}"
    pod = replica_pod(cluster, training_namespace, image, name, pod_names)
    context = pod["spec"]["securityContext"]
    # Restricted needs runAsNonRoot only; the user then comes from the image, and the kubelet
    # starts it only if the image names a numeric user other than 0.
    context.pop("runAsUser")
    context.pop("runAsGroup")
    assert context["runAsNonRoot"] is True
    probed(pod)
    create(cluster, pod)

    done = finished(cluster, training_namespace, name)
    seen = probe_output(cluster, training_namespace, name)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    declared = run("docker", "image", "inspect", image, "--format", "{{.Config.User}}").strip()
    assert seen["uid"] != 0 and str(seen["uid"]) == declared.split(":")[0], (seen, declared)


def test_the_kubelet_refuses_an_image_that_would_run_as_root(
    cluster: str, trainer_image: str, training_namespace: str, pod_names: list[str]
) -> None:
    # An image on the node that names no user (root): kube-proxy's, which every node has.
    proxy = get_json(cluster, "daemonset", "-n", "kube-system", "kube-proxy")
    image = proxy["spec"]["template"]["spec"]["containers"][0]["image"]
    name = f"pss-root-{uuid.uuid4().hex[:8]}"
    pod = replica_pod(cluster, training_namespace, trainer_image, name, pod_names)
    for key in ("runAsUser", "runAsGroup"):
        pod["spec"]["securityContext"].pop(key)
    container = pod["spec"]["containers"][0]
    container.update(image=image, imagePullPolicy="Never", command=["true"], args=[])
    create(cluster, pod)  # admitted: nothing in the pod says root

    def refused() -> dict[str, Any] | None:
        found = get_json(cluster, "pod", "-n", training_namespace, name)
        statuses = found["status"].get("containerStatuses") or [{}]
        waiting = statuses[0].get("state", {}).get("waiting", {})
        return waiting if waiting.get("reason") == "CreateContainerConfigError" else None

    waiting = wait_for(refused, what=f"the kubelet to refuse {name}", timeout=60, interval=1)
    assert "runAsNonRoot and image will run as root" in waiting["message"], waiting


def test_a_pod_without_a_seccomp_profile_is_refused_by_a_real_create(
    cluster: str, trainer_image: str, training_namespace: str, pod_names: list[str]
) -> None:
    name = f"pss-seccomp-{uuid.uuid4().hex[:8]}"
    pod = replica_pod(cluster, training_namespace, trainer_image, name, pod_names)
    pod["spec"]["securityContext"].pop("seccompProfile")
    created = subprocess.run(
        ["kubectl", "--context", f"kind-{cluster}", "create", "-f", "-"],
        input=yaml.safe_dump(pod), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert created.returncode != 0, f"a pod without seccomp was admitted: {created.stdout}"
    assert 'violates PodSecurity "restricted:latest"' in created.stderr, created.stderr
    assert "seccompProfile" in created.stderr.split("violates PodSecurity", 1)[1], created.stderr
