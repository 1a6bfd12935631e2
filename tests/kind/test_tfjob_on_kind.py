"""TFJobs of two `trainer-cpu` workers train stage 1 on real pods of the kind cluster, in the
chart's namespace and through KFP's in-cluster artifact store, as a pipeline's training step
would run them; and a worker killed mid-training is brought back by the operator and the run
resumes from its last checkpoint.

- The training-operator that `make kind-up` installed runs the image built on this machine
  (scripts/kind/training-operator.sh), TFJob only, and is Ready with its own webhook cert.
- The job is what the launcher creates: `landmarks.tfjob.spec.training_job`, the store's
  credentials as references to KFP's Secret `mlpipeline-minio-artifact`
  (`with_object_store_env`) and the chart's defaults ConfigMap laid over it
  (`launch_manifest`: service account, restricted security contexts, scratch volume). It
  runs in `landmarks-training`, where the API server enforces the restricted Pod Security
  Standard, reads the split from minio:// and writes its model, history and config there:
  read back from the host through the same store. The TF_CONFIG the operator gave each pod
  equals, host names aside, what the local executor builds (`local_executor.tf_config`).
- Kill and resume: once the store holds a finished epoch's checkpoint, worker 1's process is
  killed with SIGKILL from the node (exit 137, which `restartPolicy: ExitCode` retries); the
  chief exits 138 on losing its peer; the operator replaces both pods (new pods of the same
  names, not container restarts), the replicas resume after the last checkpointed epoch
  (the new chief's log and the history say so: the epochs before the kill are kept as they
  were measured, not trained again) and the job Succeeds with every epoch in its history.

LANDMARKS_KIND_CLUSTER names the cluster, LANDMARKS_KIND_TRAINER_IMAGE a trainer-cpu image
loaded into it; without them the tests skip.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from landmarks import storage
from landmarks.artifacts import CONFIG_FILE, HISTORY_FILE, MODEL_FILE
from landmarks.storage.s3 import KFP_MINIO_SECRET, KFP_MINIO_SECRET_ENV, MINIO_ENDPOINT_ENV
from landmarks.tfjob.launcher import launch_manifest
from landmarks.tfjob.local_executor import tf_config
from landmarks.tfjob.placement import DEFAULTS_CONFIGMAP, DEFAULTS_KEY, Placement, parse_defaults
from landmarks.tfjob.spec import find_container, training_job, with_object_store_env
from landmarks.train.recipe import PROFILES
from landmarks.train.trainer import CHECKPOINT_SUBDIR
from tests.kind.conftest import KFP_NAMESPACE, REPO, Store, get_json, kubectl, run
from tests.support.kube import wait_for

OPERATOR_SCRIPT = REPO / "scripts/kind/training-operator.sh"
OPERATOR_LABEL = "control-plane=kubeflow-training-operator"
OPERATOR_WEBHOOK = "validator.training-operator.kubeflow.org"
JOB_LABEL = "training.kubeflow.org/job-name"
# Minutes on two shared cores: start-up (TensorFlow import, the workers' rendezvous) is most.
JOB_TIMEOUT_S = 300
# The operator deletes what is left of a job past this, should the test die first.
ACTIVE_DEADLINE_S = 600
# Enough epochs that a kill lands mid-training, few enough for the suite's budget.
RESUME_EPOCHS = 24


def wait_for_job(cluster: str, namespace: str, name: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = get_json(cluster, "tfjob", "-n", namespace, name)
        done = {
            c["type"]
            for c in job.get("status", {}).get("conditions", [])
            if c["status"] == "True" and c["type"] in ("Succeeded", "Failed")
        }
        return job if done else None

    try:
        return wait_for(finished, what=f"TFJob {name} to finish", timeout=JOB_TIMEOUT_S, interval=3)
    except AssertionError as err:
        pods = kubectl(cluster, "get", "pods", "-n", namespace, "-l", f"{JOB_LABEL}={name}",
                       "-o", "wide")  # fmt: skip
        raise AssertionError(f"{err}\n{pods}") from None


def job_pods(cluster: str, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    pods = get_json(cluster, "pods", "-n", namespace, "-l", f"{JOB_LABEL}={name}")["items"]
    return {p["metadata"]["name"]: p for p in pods}


def true_conditions(job: dict[str, Any]) -> list[str]:
    return [c["type"] for c in job.get("status", {}).get("conditions", []) if c["status"] == "True"]


def node_container(cluster: str) -> str:
    """The Docker container of the cluster's one real node (kind's naming)."""
    return f"{cluster}-control-plane"


@pytest.fixture(scope="module")
def chart_defaults(cluster: str, training_namespace: str) -> dict[str, Any]:
    """The chart's `defaults.json`, as the launcher reads it before creating a job."""
    configmap = get_json(cluster, "configmap", "-n", training_namespace, DEFAULTS_CONFIGMAP)
    source = f"configmap {training_namespace}/{DEFAULTS_CONFIGMAP}"
    return parse_defaults(configmap["data"][DEFAULTS_KEY], source=source)


def launched(
    spec_manifest: dict[str, Any], uris: list[str], namespace: str, defaults: dict[str, Any]
) -> dict[str, Any]:
    """The manifest as a pipeline's training step creates it (cluster_manifest, launcher)."""
    # environ={}: the launcher runs in a pod, which reaches the store at its in-cluster
    # default; this process's LANDMARKS_MINIO_ENDPOINT is a port-forward on the host.
    manifest = with_object_store_env(spec_manifest, uris, environ={})
    # A task config whose requests fit 2 shared cores; where the replicas run (the node
    # pool, no GPU) is left to the chart, as a run that sets no placement parameter does.
    placement = Placement(resources={"requests": {"cpu": "250m", "memory": "1Gi"}})
    return launch_manifest(
        manifest, namespace=namespace, defaults=defaults, placement=placement, owner=None
    )


@pytest.fixture
def tfjobs(cluster: str, training_namespace: str, store: Store) -> Iterator[list[str]]:
    """The run folders (minio://.../<job name>) of the TFJobs a test creates: the jobs and
    the folders' objects are deleted afterwards."""
    created: list[str] = []
    yield created
    for uri in created:
        name = uri.rsplit("/", 1)[-1]
        subprocess.run(
            ["kubectl", "--context", f"kind-{cluster}", "-n", training_namespace, "delete",
             "tfjob", name, "--ignore-not-found", "--wait=false"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        for rel in list(storage.list_files(uri)):
            storage.delete(storage.join(uri, rel))


def test_operator_pod_is_ready_with_the_image_built_here(cluster: str) -> None:
    """make kind-up installed it; this only looks (a reinstall would race other tests)."""
    ref = run(str(OPERATOR_SCRIPT), "--print-ref", timeout=60).strip()
    pods = get_json(cluster, "pods", "-n", KFP_NAMESPACE, "-l", OPERATOR_LABEL)["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    pod = pods[0]
    container = pod["spec"]["containers"][0]
    assert container["image"] == ref, container["image"]
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready.get("Ready") == "True", pod["status"]
    # The image the node holds under that name is the one Docker built on this machine.
    built = run("docker", "image", "inspect", ref, "--format", "{{.Id}}", timeout=60).strip()
    on_node = run("docker", "exec", node_container(cluster), "crictl", "inspecti", "-o", "json",
                  ref, timeout=60)  # fmt: skip
    assert json.loads(on_node)["status"]["id"] == built, (on_node[:500], built)
    # TFJob only: the one controller, and of Kubeflow's job kinds only its CRD.
    assert container.get("args") == ["--enable-scheme=tfjob"], container.get("args")
    crds = {c["metadata"]["name"] for c in get_json(cluster, "crd")["items"]}
    assert {c for c in crds if c.endswith(".kubeflow.org")} == {"tfjobs.kubeflow.org"}, crds
    # The overlay's Secret starts empty; the operator filled it with its own certificate
    # and put its CA into the validating webhook that checks every TFJob created.
    secret = get_json(cluster, "secret", "-n", KFP_NAMESPACE, "training-operator-webhook-cert")
    assert {"tls.crt", "tls.key"} <= set(secret.get("data", {})), secret.get("data")
    webhook = get_json(cluster, "validatingwebhookconfiguration", OPERATOR_WEBHOOK)
    assert all(w["clientConfig"].get("caBundle") for w in webhook["webhooks"]), webhook


def test_two_worker_tfjob_trains_stage1_through_the_store(
    cluster: str,
    trainer_image: str,
    training_namespace: str,
    chart_defaults: dict[str, Any],
    split_in_store: str,
    run_root: str,
    tfjobs: list[str],
) -> None:
    name = f"stage1-tiny-{uuid.uuid4().hex[:6]}"
    folder = f"{run_root}/{name}"
    tfjobs.append(folder)
    out = f"{folder}/stage1"
    spec = training_job(
        name,
        stage="stage1",
        data=split_in_store,
        out=out,
        profile="tiny",
        image=trainer_image,
        namespace=training_namespace,
        workers=2,
        # Keep the finished pods to read their TF_CONFIG; both must succeed.
        clean_pod_policy="None",
        success_policy="AllWorkers",
        active_deadline_seconds=ACTIVE_DEADLINE_S,
    )
    manifest = launched(spec.to_manifest(), [split_in_store, out], training_namespace,
                        chart_defaults)  # fmt: skip
    started = time.monotonic()
    kubectl(cluster, "create", "-f", "-", stdin=yaml.safe_dump(manifest))
    job = wait_for_job(cluster, training_namespace, name)
    took = time.monotonic() - started
    pods = job_pods(cluster, training_namespace, name)
    logs = kubectl(cluster, "logs", "-n", training_namespace, f"{name}-worker-0", "--tail=40")
    assert "Succeeded" in true_conditions(job), f"{job['status']}\n{logs}"
    phases = {n: p["status"]["phase"] for n, p in pods.items()}
    assert phases == {f"{name}-worker-0": "Succeeded", f"{name}-worker-1": "Succeeded"}, phases

    # Pods that ran under the restricted profile, which the API server enforces there.
    labels = get_json(cluster, "namespace", training_namespace)["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", labels
    addresses = [f"{name}-worker-{i}.{training_namespace}.svc:2222" for i in range(2)]
    secret_env = {env: key for key, env in KFP_MINIO_SECRET_ENV.items()}
    for pod in pods.values():
        index = int(pod["metadata"]["labels"]["training.kubeflow.org/replica-index"])
        assert pod["spec"]["serviceAccountName"] == chart_defaults["serviceAccountName"]
        assert pod["spec"]["nodeSelector"] == chart_defaults["nodeSelector"], pod["spec"]
        assert pod["spec"]["nodeName"] == node_container(cluster), pod["spec"]["nodeName"]
        container = find_container({"template": {"spec": pod["spec"]}}, "Worker")
        env = {e["name"]: e for e in container.get("env", [])}
        given = json.loads(env["TF_CONFIG"]["value"])
        # Host names aside: the local executor's addresses are 127.0.0.1 ports, the
        # operator's the job's headless Services; all else must be the same.
        assert given["cluster"]["worker"] == addresses, given
        assert given == tf_config({"worker": addresses}, "Worker", index), given
        # The store's keys reached the pod from KFP's Secret, not from this test.
        for variable, key in secret_env.items():
            ref = env[variable].get("valueFrom", {}).get("secretKeyRef")
            assert ref == {"name": KFP_MINIO_SECRET, "key": key}, env[variable]
            assert "value" not in env[variable], variable
        assert MINIO_ENDPOINT_ENV not in env, env[MINIO_ENDPOINT_ENV]

    # The chief's record of the finished run, read back from the store.
    listing = set(storage.list_files(out))
    assert {MODEL_FILE, HISTORY_FILE, CONFIG_FILE} <= listing, sorted(listing)
    history = json.loads(storage.read_bytes(storage.join(out, HISTORY_FILE)))
    epochs = PROFILES["tiny"]["epochs"]
    assert [row["epoch"] for row in history] == list(range(1, epochs + 1)), history
    config = json.loads(storage.read_bytes(storage.join(out, CONFIG_FILE)))
    assert config["epochs"] == epochs and config["model"] == "lenet5", config
    # A finished run leaves no checkpoints behind.
    assert not [f for f in listing if f.startswith(f"{CHECKPOINT_SUBDIR}/")], sorted(listing)
    for index in range(2):
        worker_logs = kubectl(cluster, "logs", "-n", training_namespace, f"{name}-worker-{index}")
        assert "2 workers" in worker_logs, worker_logs[-3000:]
    print(f"\n{name}: two workers, {epochs} epochs, created to Succeeded in {took:.0f} s")


def checkpointed_epochs(checkpoint_dir: str) -> list[dict[str, Any]]:
    """The history the chief pushed after its last checkpoint (empty before the first)."""
    try:
        return json.loads(storage.read_bytes(storage.join(checkpoint_dir, HISTORY_FILE)))
    except FileNotFoundError:
        return []


def kill_trainer(cluster: str, pod: dict[str, Any]) -> None:
    """SIGKILL the pod's trainer process from the node, as the OOM killer would."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    node = node_container(cluster)
    inspect = run("docker", "exec", node, "crictl", "inspect", "-o", "json", container_id,
                  timeout=60)  # fmt: skip
    pid = int(json.loads(inspect)["info"]["pid"])
    run("docker", "exec", node, "kill", "-KILL", str(pid), timeout=60)


def job_events(cluster: str, namespace: str, name: str) -> list[tuple[str, str]]:
    events = get_json(cluster, "events", "-n", namespace, "--field-selector",
                      f"involvedObject.kind=TFJob,involvedObject.name={name}")["items"]  # fmt: skip
    return [(e.get("reason", ""), e.get("message", "")) for e in events]


EPOCH_LINE = re.compile(r"\bworker-0 epoch (\d+)/(\d+) ")


def test_killed_worker_is_replaced_and_training_resumes(
    cluster: str,
    trainer_image: str,
    training_namespace: str,
    chart_defaults: dict[str, Any],
    split_in_store: str,
    run_root: str,
    tfjobs: list[str],
) -> None:
    name = f"stage1-resume-{uuid.uuid4().hex[:6]}"
    folder = f"{run_root}/{name}"
    tfjobs.append(folder)
    out = f"{folder}/stage1"
    checkpoints = storage.join(out, CHECKPOINT_SUBDIR)  # the trainer's default
    spec = training_job(
        name,
        stage="stage1",
        data=split_in_store,
        out=out,
        profile="tiny",
        overrides={"epochs": RESUME_EPOCHS},
        image=trainer_image,
        namespace=training_namespace,
        workers=2,
        clean_pod_policy="None",
        success_policy="AllWorkers",
        active_deadline_seconds=ACTIVE_DEADLINE_S,
    )
    assert spec.restart_policy == "ExitCode"  # 137 (SIGKILL) is retried, 1..127 are not
    manifest = launched(spec.to_manifest(), [split_in_store, out], training_namespace,
                        chart_defaults)  # fmt: skip
    started = time.monotonic()
    kubectl(cluster, "create", "-f", "-", stdin=yaml.safe_dump(manifest))
    seen = wait_for(lambda: checkpointed_epochs(checkpoints), what=f"a checkpoint in {checkpoints}",
                    timeout=JOB_TIMEOUT_S, interval=0.5)  # fmt: skip
    first_checkpoint = time.monotonic() - started
    pods = job_pods(cluster, training_namespace, name)
    old = {n: p["metadata"]["uid"] for n, p in pods.items()}
    chief, victim = f"{name}-worker-0", f"{name}-worker-1"
    kill_trainer(cluster, pods[victim])
    killed = time.monotonic()

    def chief_gone() -> bool:
        # The chief notices the lost peer at its next collective and exits 138; from then
        # on the store's checkpoint is what the replicas resume from.
        pod = job_pods(cluster, training_namespace, name).get(chief)
        if pod is None or pod["metadata"]["uid"] != old[chief]:
            return True
        return pod["status"]["phase"] == "Failed"

    wait_for(chief_gone, what=f"{chief} to stop after its peer died", timeout=120, interval=0.5)
    resumed_from = checkpointed_epochs(checkpoints)
    chief_stopped = time.monotonic()
    assert len(seen) <= len(resumed_from) < RESUME_EPOCHS, (len(seen), len(resumed_from))

    def replaced() -> dict[str, dict[str, Any]] | None:
        now = job_pods(cluster, training_namespace, name)
        fresh = {n: p for n, p in now.items() if p["metadata"]["uid"] != old.get(n)}
        return now if set(fresh) == set(old) else None

    wait_for(replaced, what="both replicas' pods to be replaced", timeout=120, interval=1)
    replaced_at = time.monotonic()
    job = wait_for_job(cluster, training_namespace, name)
    done = time.monotonic()
    logs = kubectl(cluster, "logs", "-n", training_namespace, chief)
    assert "Succeeded" in true_conditions(job), f"{job['status']}\n{logs[-3000:]}"

    # What the operator did under restartPolicy ExitCode: it saw the killed worker's 137
    # and the chief's 138 (the trainer's lost-peer code), restarted the job, and replaced
    # each failed pod by a new one (same name, new uid, no container restarts).
    events = job_events(cluster, training_namespace, name)
    exits = {m for r, m in events if r == "ExitedWithCode"}
    assert f"Pod: {training_namespace}.{victim} exited with code 137" in exits, events
    assert f"Pod: {training_namespace}.{chief} exited with code 138" in exits, events
    assert "TFJobRestarting" in {r for r, _ in events}, events
    pods = job_pods(cluster, training_namespace, name)
    for pod_name, pod in pods.items():
        assert pod["metadata"]["uid"] != old[pod_name], pod_name
        assert pod["status"]["phase"] == "Succeeded", (pod_name, pod["status"])
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0, pod["status"]

    # The new chief trained from the epoch after the last checkpoint, not from epoch 1 ...
    trained = [int(m.group(1)) for m in EPOCH_LINE.finditer(logs)]
    assert trained == list(range(len(resumed_from) + 1, RESUME_EPOCHS + 1)), (
        len(resumed_from),
        trained,
    )
    # ... and the history is whole, its epochs before the kill kept as they were measured.
    history = json.loads(storage.read_bytes(storage.join(out, HISTORY_FILE)))
    assert [row["epoch"] for row in history] == list(range(1, RESUME_EPOCHS + 1)), history
    assert history[: len(resumed_from)] == resumed_from
    assert MODEL_FILE in set(storage.list_files(out))
    print(
        f"\n{name}: first checkpoint {first_checkpoint:.1f} s after creation; killed "
        f"{victim} after {len(seen)} epoch(s); chief stopped {chief_stopped - killed:.1f} s "
        f"later with {len(resumed_from)} epoch(s) checkpointed; both pods replaced "
        f"{replaced_at - killed:.1f} s after the kill; Succeeded {done - killed:.1f} s after "
        f"the kill, {done - started:.1f} s after creation"
    )
