"""A task of the compiled pipeline as a pod, with what KFP's backend does around it played by
the test: the KFP v2 contract for artifacts in KFP's in-cluster store, without KFP.

On a KFP backend (2.17) a task's pod gets from the driver an executor input whose artifact
URIs are `minio://mlpipeline/v2/artifacts/<pipeline>/<run>/<task>/<output>` and whose output
files are KFP's local ones (`/tmp/kfp_outputs/output_metadata.json`, `/tmp/kfp/outputs/<name>`).
KFP's Go launcher is the container's entrypoint: it downloads every input artifact to the
local path the KFP Python executor maps its URI to (kfp.dsl.types.artifact_types: `minio://b/k`
-> `/minio/b/k`, an emptyDir of the pod), runs the component's command, then uploads each
output artifact's local path to its URI and records the executor output (metrics live there).
The launcher reads the store's keys from KFP's Secret `mlpipeline-minio-artifact` itself; the
component's own process gets them only where the task asks for them (the training tasks'
`use_secret_as_env`, in the compiled platform spec).

Here, in tests only (the product ships no such code; issue 12 runs the real backend):
- `executor_input` moves a `tests.images.executor` call's output files to KFP's paths;
- an initContainer in the component's own image downloads the inputs with the project's
  `landmarks.storage` (DOWNLOAD);
- the main container's command is wrapped by UPLOAD_AFTER, which stands in for KFP's Go
  launcher: it runs the task's very command line, without the launcher's keys in its
  environment, and only after it exits 0 uploads the outputs and the executor output (kept
  in the store beside the task's artifacts, where KFP records it in its metadata store);
- the pod runs as KFP runs pipeline pods: KFP's namespace, the pipeline-runner account, and
  here in the `restricted` Pod Security profile (uid 1000, read-only root, /tmp and /minio
  emptyDirs, no capabilities), which the API server checks (`restricted_refusal`).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.images.executor import EXECUTOR_INPUT_PLACEHOLDER, ExecutorCall
from tests.kind.conftest import kubectl_run

# What KFP's driver puts in the executor input (backend/src/v2: component.OutputMetadataFilepath
# and the output parameters' files).
OUTPUT_METADATA_FILE = "/tmp/kfp_outputs/output_metadata.json"
OUTPUT_PARAMETERS_DIR = "/tmp/kfp/outputs"
# kfp.dsl.types.artifact_types maps minio://bucket/key to this folder; KFP mounts an emptyDir.
MINIO_MOUNT = "/minio"
MINIO_SCHEME = "minio://"
# The launcher's copy of the store's keys, under names the task's process never sees.
LAUNCHER_KEY_ENV = {
    "AWS_ACCESS_KEY_ID": "KFP_LAUNCHER_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY": "KFP_LAUNCHER_SECRET_KEY",
}
STORE_SECRET_KEYS = {"AWS_ACCESS_KEY_ID": "accesskey", "AWS_SECRET_ACCESS_KEY": "secretkey"}
RUN_LABEL = "landmarks.io/kind-test-run"

# The initContainer: every input artifact from the store to the path KFP maps its URI to.
DOWNLOAD = """
import json, sys
from pathlib import Path
from landmarks import storage
for uri, path in json.loads(sys.argv[1]):
    if storage.exists(uri):  # an artifact that is one object
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(storage.read_bytes(uri))
        count = 1
    else:
        root = storage.download_tree(uri, path)
        count = sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
    if not count:
        sys.exit(f"input artifact {uri}: nothing in the store")
    print(f"downloaded {uri} -> {path}: {count} file(s)", flush=True)
"""

# The main container's entrypoint, standing in for KFP's Go launcher (see the module's doc).
UPLOAD_AFTER = """
import json, os, subprocess, sys
from pathlib import Path
plan = json.loads(sys.argv[1])
keys = {name: os.environ.pop(alias) for name, alias in plan["launcher_keys"].items()}
code = subprocess.call(sys.argv[2:])
if code:
    sys.exit(code)
os.environ.update(keys)
from landmarks import storage
for uri, path in plan["outputs"]:
    local = Path(path)
    if local.is_dir():
        storage.upload_tree(local, uri)
        count = sum(1 for p in local.rglob("*") if p.is_file())
        print(f"uploaded {path} -> {uri}: {count} file(s)")
    elif local.is_file():
        storage.copy(path, uri)
        print(f"uploaded {path} -> {uri}")
    else:
        print(f"{path}: nothing written (its data is in the executor output)")
storage.write_bytes(plan["executor_output_uri"], Path(plan["executor_output"]).read_bytes())
print(f"executor output -> {plan['executor_output_uri']}", flush=True)
"""


def local_path(uri: str) -> str:
    """Where the KFP Python executor reads or writes the artifact at `uri` inside the pod."""
    assert uri.startswith(MINIO_SCHEME), f"{uri}: the task pods carry minio:// artifacts only"
    return f"{MINIO_MOUNT}/{uri[len(MINIO_SCHEME) :]}"


def executor_input(call: ExecutorCall) -> dict[str, Any]:
    """The call's executor input with the output files where KFP's driver puts them."""
    document = copy.deepcopy(call.executor_input)
    outputs = document["outputs"]
    outputs["outputFile"] = OUTPUT_METADATA_FILE
    for name, parameter in outputs.get("parameters", {}).items():
        parameter["outputFile"] = f"{OUTPUT_PARAMETERS_DIR}/{name}"
    return document


def task_argv(container: Mapping[str, Any], document: Mapping[str, Any]) -> list[str]:
    """The task's command and args from the compiled YAML with `{{$}}` filled in."""
    text = json.dumps(document)
    return [
        str(part).replace(EXECUTOR_INPUT_PLACEHOLDER, text)
        for part in [*container["command"], *container.get("args", [])]
    ]


def _artifacts(section: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in section.get("artifacts", {}).values():
        for artifact in item["artifacts"]:
            pairs.append((artifact["uri"], local_path(artifact["uri"])))
    return pairs


def secret_env(name: str, key: str, secret: str, *, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def platform_env(platform: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The env a task's kubernetes platform spec asks for (kfp-kubernetes use_secret_as_env)."""
    env: list[dict[str, Any]] = []
    for secret in platform.get("secretAsEnv", []):
        for item in secret["keyToEnv"]:
            env.append(
                secret_env(
                    item["envVar"],
                    item["secretKey"],
                    secret["secretName"],
                    optional=bool(secret.get("optional")),
                )
            )
    return env


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass
class TaskPod:
    """One task's pod manifest and where its launcher stand-in leaves the executor output."""

    name: str
    namespace: str
    manifest: dict[str, Any]
    executor_output_uri: str


def task_pod(
    call: ExecutorCall,
    container: Mapping[str, Any],
    platform: Mapping[str, Any],
    *,
    name: str,
    namespace: str,
    service_account: str,
    store_secret: str,
    run_label: str,
    executor_output_uri: str,
    deadline_s: int,
) -> TaskPod:
    """The pod of `call`'s task: download initContainer, the task wrapped by UPLOAD_AFTER."""
    document = executor_input(call)
    argv = task_argv(container, document)
    inputs = _artifacts(document["inputs"])
    plan = {
        "outputs": _artifacts(document["outputs"]),
        "executor_output": OUTPUT_METADATA_FILE,
        "executor_output_uri": executor_output_uri,
        "launcher_keys": LAUNCHER_KEY_ENV,
    }
    store_keys = [secret_env(n, k, store_secret) for n, k in STORE_SECRET_KEYS.items()]
    launcher_keys = [
        secret_env(LAUNCHER_KEY_ENV[n], k, store_secret) for n, k in STORE_SECRET_KEYS.items()
    ]
    downward = [
        {"name": "KFP_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "KFP_POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
    ]
    task_env = [{"name": k, "value": v} for k, v in call.env.items()]
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "minio", "mountPath": MINIO_MOUNT},
    ]
    init = []
    if inputs:
        init.append(
            {
                "name": "download-inputs",
                "image": call.image,
                "command": ["python3", "-c", DOWNLOAD, json.dumps(inputs)],
                "env": store_keys,
                "volumeMounts": mounts,
                "securityContext": RESTRICTED_CONTAINER,
            }
        )
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {RUN_LABEL: run_label}},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": service_account,
            "activeDeadlineSeconds": deadline_s,
            "securityContext": RESTRICTED_POD,
            "initContainers": init,
            "containers": [
                {
                    "name": "main",
                    "image": call.image,
                    "command": ["python3", "-c", UPLOAD_AFTER, json.dumps(plan), *argv],
                    "env": [*task_env, *platform_env(platform), *launcher_keys, *downward],
                    "volumeMounts": mounts,
                    "securityContext": RESTRICTED_CONTAINER,
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "minio", "emptyDir": {}}],
        },
    }
    return TaskPod(name, namespace, manifest, executor_output_uri)


def restricted_refusal(cluster: str, pod: TaskPod, restricted_namespace: str) -> str:
    """What the API server's PodSecurity admission says of the pod in a namespace enforcing
    `restricted` (a server-side dry run; KFP's namespace enforces nothing): "" if admitted."""
    manifest = copy.deepcopy(pod.manifest)
    manifest["metadata"]["namespace"] = restricted_namespace
    # The account and Secret live in KFP's namespace; admission of the pod's security does not
    # depend on them.
    manifest["spec"].pop("serviceAccountName")
    proc = kubectl_run(cluster, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest))
    return "" if proc.returncode == 0 else proc.stderr.strip()


@dataclass
class Finished:
    phase: str
    wall_s: float
    containers_s: dict[str, float]
    logs: str


def _seconds(state: Mapping[str, Any]) -> float:
    from datetime import datetime

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (at(state["finishedAt"]) - at(state["startedAt"])).total_seconds()


def run_to_end(cluster: str, pod: TaskPod, timeout_s: float, poll_s: float = 2.0) -> Finished:
    """Create the pod and wait (bounded) until it Succeeded or Failed; its logs, its times."""
    started = time.monotonic()
    made = kubectl_run(cluster, "create", "-f", "-", stdin=json.dumps(pod.manifest))
    assert made.returncode == 0, f"creating pod {pod.name}: {made.stderr}"
    status: dict[str, Any] = {}
    while time.monotonic() - started < timeout_s:
        got = kubectl_run(cluster, "get", "pod", "-n", pod.namespace, pod.name, "-o", "json")
        if got.returncode == 0:
            status = json.loads(got.stdout).get("status", {})
            if status.get("phase") in ("Succeeded", "Failed"):
                break
        time.sleep(poll_s)
    wall = time.monotonic() - started
    containers: dict[str, float] = {}
    for item in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
        ended = item.get("state", {}).get("terminated")
        if ended and ended.get("startedAt") and ended.get("finishedAt"):
            containers[item["name"]] = _seconds(ended)
    logs = pod_logs(cluster, pod)
    phase = status.get("phase", "unknown")
    if phase not in ("Succeeded", "Failed"):
        raise AssertionError(
            f"pod {pod.namespace}/{pod.name} not finished within {timeout_s:.0f} s "
            f"(phase {phase}): {json.dumps(status)[-2000:]}\n{logs[-4000:]}"
        )
    return Finished(phase, wall, containers, logs)


def pod_logs(cluster: str, pod: TaskPod) -> str:
    names = [c["name"] for c in pod.manifest["spec"]["initContainers"]]
    names += [c["name"] for c in pod.manifest["spec"]["containers"]]
    parts = []
    for container in names:
        got = kubectl_run(cluster, "logs", "-n", pod.namespace, pod.name, "-c", container)
        parts.append(f"--- {container}\n{got.stdout}{got.stderr}")
    return "\n".join(parts)


def delete_pods(cluster: str, namespace: str, names: Sequence[str]) -> None:
    if names:
        kubectl_run(
            cluster, "delete", "pod", "-n", namespace, *names, "--ignore-not-found", "--wait=false"
        )
