"""The TFJob launcher (`python -m landmarks.tfjob run-cluster`) as KFP runs it: a pod of the
component image in KFP's namespace, as the pipeline-runner service account the chart's
RoleBinding names, configured in-cluster (its service account token, no kubeconfig),
restricted Pod Security compliant, creating TFJobs in the chart's training namespace, on a
real kubelet.

- A 2-worker stage-1 TFJob (trainer-cpu image, profile tiny, the split in the cluster's store)
  trains to the end: the chief's own lines appear in the launcher pod's log, the model lands
  in the store, and the launcher pod Succeeds (exit 0).
- A job whose data do not exist fails, and so does the launcher pod (exit 1), naming the cause.
- The same pod as an account the chart binds nothing to is refused (403) by the API server:
  the launcher acts with its pod's own token, and its rights come from the chart's Role.
- Deleting the launcher pod while its job runs (SIGTERM from the kubelet) deletes the TFJob
  well within the pod's grace period, and the launcher exits 143 saying why.
- A replica whose image tag does not exist (at a registry on the node's loopback: the kubelet's
  ErrImagePull / ImagePullBackOff) fails the launcher after its start-error bound, naming the
  pod, the image and the kubelet's reason, with the TFJob deleted.

The manifests are what the KFP training step hands the launcher
(`landmarks.pipeline_steps.training.cluster_manifest`); the measured times are printed
(`pytest -s` or `-rP`).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from landmarks import storage
from landmarks.artifacts import HISTORY_FILE, MODEL_FILE
from landmarks.pipeline_steps.training import cluster_manifest, pipeline_step
from landmarks.train.recipe import PROFILES
from tests.kind.conftest import Runner, get_json, kubectl, stop_process
from tests.support.kube import wait_for

JOB_DIR = "/etc/landmarks-job"
LAUNCHER = ["python", "-m", "landmarks.tfjob", "run-cluster"]
# Small requests, so two workers and the launcher fit beside the rest of a 2-core node.
WORKER_CPU = "200m"
TRAIN_TIMEOUT_S = 600  # the launcher's own bound on the job
POD_WAIT_S = TRAIN_TIMEOUT_S + 60
START_ERROR_TIMEOUT_S = 20  # instead of the launcher's 3 min, for the image pull test
GRACE_S = 30  # the launcher pod's terminationGracePeriodSeconds (KFP's pods get 30 s too)
# A deleted launcher must have deleted its job well before the kubelet's SIGKILL at GRACE_S.
DELETE_BOUND_S = 15
JOB_GONE_S = 60  # after the launcher's own exit: the API server removes the job
# Keeps a deleted launcher pod readable (its exit code) until the test lets it go.
HOLD_FINALIZER = "landmarks.io/kind-test-hold"


class PodLog:
    """`kubectl logs -f` of one pod, each line stamped with when it arrived (monotonic).

    Stopped by its process id. The stream ends when the container exits, so its end is when
    the launcher exited, and a deleted launcher's last lines are read from it.
    """

    def __init__(self, cluster: str, namespace: str, pod: str) -> None:
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            ["kubectl", "--context", f"kind-{cluster}", "-n", namespace, "logs", "-f", pod],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def text(self) -> str:
        return "\n".join(line for _, line in list(self.lines))

    def first(self, pattern: str) -> float | None:
        """When the first line matching `pattern` arrived."""
        found = re.compile(pattern)
        return next((t for t, line in list(self.lines) if found.search(line)), None)

    def wait_end(self, timeout: float) -> float:
        """When the stream ended (the container exited)."""
        self._reader.join(timeout)
        assert not self._reader.is_alive(), f"the log did not end in {timeout:.0f}s:\n{self.text()}"
        return time.monotonic()

    def stop(self) -> None:
        stop_process(self.proc)
        self._reader.join(timeout=10)


@dataclass
class Launch:
    """One launcher pod and what it was given."""

    cluster: str
    runner: Runner
    pod: str
    job: str  # the TFJob's name (the manifest's, as the step names it)
    training_namespace: str
    started: float  # time.monotonic() when the pod was created
    log: PodLog | None = None

    def pod_json(self) -> dict[str, Any]:
        return get_json(self.cluster, "pod", "-n", self.runner.namespace, self.pod)

    def follow(self) -> PodLog:
        """Follow the launcher's log once its container has started."""

        def started() -> bool:
            statuses = self.pod_json()["status"].get("containerStatuses") or []
            return any(set(s.get("state") or {}) & {"running", "terminated"} for s in statuses)

        wait_for(started, what=f"launcher pod {self.pod} to start", timeout=120, interval=1)
        self.log = PodLog(self.cluster, self.runner.namespace, self.pod)
        return self.log

    def wait_exit(self, timeout: float) -> dict[str, Any]:
        """The launcher container's terminated state, once the pod has ended."""

        def ended() -> dict[str, Any] | None:
            status = self.pod_json()["status"]
            if status.get("phase") not in ("Succeeded", "Failed"):
                return None
            return {"phase": status["phase"], **status["containerStatuses"][0]["state"]}

        return wait_for(ended, what=f"launcher pod {self.pod} to end", timeout=timeout, interval=2)

    def tfjob(self) -> dict[str, Any] | None:
        proc = subprocess.run(
            ["kubectl", "--context", f"kind-{self.cluster}", "-n", self.training_namespace,
             "get", "tfjob", self.job, "-o", "json", "--ignore-not-found"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip() else None


def report(name: str, seconds: float) -> None:
    """A measured time, in the test's output (`pytest -s` or `-rP` shows it)."""
    print(f"[timing] {name}: {seconds:.1f}s")


def step_manifest(
    monkeypatch: pytest.MonkeyPatch,
    *,
    run_id: str,
    data: str,
    out: str,
    image: str,
    namespace: str,
    workers: int = 2,
) -> dict[str, Any]:
    """The TFJob the KFP training step hands the launcher for stage 1, profile tiny."""
    step = pipeline_step(
        stage="stage1", splits_path="", splits_uri=data, model_path="", model_uri=out,
        executor="cluster", task_name="train-stage1", workers=workers, profile="tiny",
        weights="none", timeout_s=TRAIN_TIMEOUT_S, run_id=run_id, kfp_task="train-stage1",
        image=image, namespace=namespace,
    )  # fmt: skip
    step.spec["cpu"] = WORKER_CPU
    # The host reaches the store through a port-forward; pods use its in-cluster default.
    monkeypatch.delenv("LANDMARKS_MINIO_ENDPOINT", raising=False)
    manifest = cluster_manifest(step)
    monkeypatch.undo()
    return manifest


def launcher_pod(
    name: str, runner: Runner, image: str, configmap: str, args: list[str], hold: bool = False
) -> dict[str, Any]:
    """The launcher as a KFP step runs it: its own process is PID 1, so SIGTERM reaches it.

    `hold`: a finalizer keeps the pod, once deleted, until the test removes it.
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": runner.namespace,
            "labels": {"app.kubernetes.io/part-of": "landmarks-kind-tests"},
            **({"finalizers": [HOLD_FINALIZER]} if hold else {}),
        },
        "spec": {
            "serviceAccountName": runner.service_account,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": GRACE_S,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "launcher",
                    "image": image,
                    "command": [*LAUNCHER, f"{JOB_DIR}/job.yaml", *args],
                    "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "128Mi"},
                        "limits": {"memory": "512Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "job", "mountPath": JOB_DIR, "readOnly": True}],
                }
            ],
            "volumes": [{"name": "job", "configMap": {"name": configmap}}],
        },
    }


@pytest.fixture
def launch(
    cluster: str, pipeline_runner: Runner, component_image: str, training_namespace: str
) -> Iterator[Callable[..., Launch]]:
    """Starts launcher pods; removes them, their ConfigMaps and their TFJobs afterwards."""
    made: list[Launch] = []

    def start(
        manifest: dict[str, Any], *extra: str, hold: bool = False, runner: Runner | None = None
    ) -> Launch:
        runner = runner or pipeline_runner
        suffix = uuid.uuid4().hex[:8]
        name, configmap = f"launcher-{suffix}", f"launcher-job-{suffix}"
        kubectl(cluster, "-n", runner.namespace, "create", "configmap", configmap,
                f"--from-literal=job.yaml={yaml.safe_dump(manifest)}")  # fmt: skip
        # Where the replicas run is the chart's (training defaults), as for a KFP step.
        args = ["--namespace", training_namespace, "--timeout", str(TRAIN_TIMEOUT_S),
                "--pending-timeout", str(TRAIN_TIMEOUT_S), *extra]  # fmt: skip
        pod = launcher_pod(name, runner, component_image, configmap, args, hold)
        started = time.monotonic()
        kubectl(cluster, "create", "-f", "-", stdin=yaml.safe_dump(pod))
        found = Launch(cluster, runner, name, manifest["metadata"]["name"],
                       training_namespace, started)  # fmt: skip
        made.append(found)
        return found

    yield start
    for one in made:
        if one.log is not None:
            one.log.stop()
        # Let a held pod go (it may be gone already: no check).
        subprocess.run(
            ["kubectl", "--context", f"kind-{cluster}", "-n", one.runner.namespace, "patch",
             "pod", one.pod, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        ns = ["-n", one.runner.namespace, "--ignore-not-found", "--wait=false"]
        kubectl(cluster, "delete", "pod", one.pod, *ns)
        kubectl(cluster, "delete", "configmap", one.pod.replace("launcher-", "launcher-job-"), *ns)
        kubectl(cluster, "-n", training_namespace, "delete", "tfjob", one.job,
                "--ignore-not-found", "--wait=false")  # fmt: skip


def test_launcher_pod_is_restricted_compliant(
    cluster: str, pipeline_runner: Runner, component_image: str, training_namespace: str
) -> None:
    """The API server's Pod Security admission of the training namespace (enforce=restricted)
    takes the launcher's pod spec; KFP's namespace enforces nothing, so it is checked there."""
    pod = launcher_pod("launcher-psa-check", pipeline_runner, component_image, "none", [])
    pod["metadata"]["namespace"] = training_namespace
    del pod["spec"]["serviceAccountName"]  # the runner account lives in KFP's namespace
    proc = subprocess.run(
        ["kubectl", "--context", f"kind-{cluster}", "create", "--dry-run=server", "-f", "-"],
        input=yaml.safe_dump(pod), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "PodSecurity" not in proc.stderr, proc.stderr


def test_without_the_charts_binding_the_launcher_is_refused(
    launch: Callable[..., Launch],
    monkeypatch: pytest.MonkeyPatch,
    pipeline_runner: Runner,
    trainer_image: str,
    training_namespace: str,
    split_in_store: str,
    run_root: str,
) -> None:
    """The same pod as KFP's namespace's `default` account: the API server sees the pod's own
    token (in-cluster configuration) and refuses it, so what the launcher may do in the
    training namespace comes from the chart's RoleBinding alone."""
    run_id = f"kind-launcher-{uuid.uuid4().hex[:8]}"
    manifest = step_manifest(monkeypatch, run_id=run_id, data=split_in_store,
                             out=f"{run_root}/{run_id}/stage1", image=trainer_image,
                             namespace=training_namespace)  # fmt: skip
    one = launch(manifest, runner=Runner(pipeline_runner.namespace, "default"))
    log = one.follow()
    state = one.wait_exit(120)
    log.wait_end(30)
    text = log.text()
    assert state["terminated"]["exitCode"] == 2, f"{state}\n{text}"
    who = f"system:serviceaccount:{pipeline_runner.namespace}:default"
    refused = [line for line in text.splitlines() if line.startswith("error: cannot create")]
    assert refused and f"{training_namespace}/{one.job}: 403 Forbidden" in refused[0], text
    assert who in refused[0] and "landmarks-tfjob-launcher Role" in refused[0], text
    assert one.tfjob() is None


def test_launcher_pod_trains_and_streams_the_chiefs_log(
    launch: Callable[..., Launch],
    monkeypatch: pytest.MonkeyPatch,
    trainer_image: str,
    training_namespace: str,
    split_in_store: str,
    run_root: str,
) -> None:
    run_id = f"kind-launcher-{uuid.uuid4().hex[:8]}"
    out = f"{run_root}/{run_id}/stage1"
    manifest = step_manifest(monkeypatch, run_id=run_id, data=split_in_store, out=out,
                             image=trainer_image, namespace=training_namespace)  # fmt: skip
    one = launch(manifest)
    log = one.follow()
    state = one.wait_exit(POD_WAIT_S)
    ended = log.wait_end(30)
    text = log.text()
    assert state["phase"] == "Succeeded", f"{state}\n{text[-4000:]}"
    assert state["terminated"]["exitCode"] == 0, state

    # The chief's own lines (landmarks.train.trainer), streamed by the launcher.
    assert re.search(r"^\[worker-0\] .*2 workers \(chief: True\)", text, re.M), text[-4000:]
    assert re.search(rf"^\[worker-0\] .*saved {MODEL_FILE} to {re.escape(out)}$", text, re.M), text[
        -4000:
    ]
    assert re.search(r"^\[worker-1\] .*2 workers \(chief: False\)", text, re.M), text[-4000:]
    assert f"[launcher] {training_namespace}/{one.job}: created" in text, text[:2000]
    assert re.search(r"\[launcher\] .*Succeeded \(", text), text[-2000:]
    # Launched from KFP's namespace: the job cannot have the pod as its owner.
    job = one.tfjob()
    assert job is not None and not job["metadata"].get("ownerReferences"), job
    history = json.loads(storage.read_text(storage.join(out, HISTORY_FILE)))
    assert len(history) == PROFILES["tiny"]["epochs"], history

    created = log.first(r"\[launcher\] .*: created")
    first_chief = log.first(r"^\[worker-0\] ")
    assert created is not None and first_chief is not None
    report("launch_to_first_chief_log_s", first_chief - one.started)
    took = re.search(r"\[launcher\] .*: Succeeded \(\w+\) after ([\d.]+)s", text)
    assert took, text[-2000:]
    report("job_duration_by_the_launcher_s", float(took.group(1)))
    report("job_created_to_launcher_exit_s", ended - created)


def test_failing_job_fails_the_launcher_pod_with_its_cause(
    launch: Callable[..., Launch],
    monkeypatch: pytest.MonkeyPatch,
    trainer_image: str,
    training_namespace: str,
    split_in_store: str,
    run_root: str,
) -> None:
    run_id = f"kind-launcher-{uuid.uuid4().hex[:8]}"
    missing = f"{run_root}/{run_id}/no-such-split"
    manifest = step_manifest(monkeypatch, run_id=run_id, data=missing,
                             out=f"{run_root}/{run_id}/stage1", image=trainer_image,
                             namespace=training_namespace)  # fmt: skip
    one = launch(manifest)
    log = one.follow()
    state = one.wait_exit(POD_WAIT_S)
    ended = log.wait_end(30)
    text = log.text()
    assert state["phase"] == "Failed", f"{state}\n{text[-4000:]}"
    assert state["terminated"]["exitCode"] == 1, f"{state}\n{text[-4000:]}"
    summary = [line for line in text.splitlines() if re.search(r"\[launcher\] .*Failed \(", line)]
    assert summary, text[-4000:]
    # The launcher's verdict carries the chief's last lines, which name the missing data.
    verdict = text[text.index(summary[-1]) :]
    assert missing in verdict, verdict
    created = log.first(r"\[launcher\] .*: created")
    assert created is not None
    report("failing_job_created_to_launcher_exit_s", ended - created)


def test_deleting_the_launcher_pod_deletes_its_tfjob(
    cluster: str,
    launch: Callable[..., Launch],
    monkeypatch: pytest.MonkeyPatch,
    trainer_image: str,
    training_namespace: str,
    split_in_store: str,
    run_root: str,
) -> None:
    run_id = f"kind-launcher-{uuid.uuid4().hex[:8]}"
    manifest = step_manifest(monkeypatch, run_id=run_id, data=split_in_store,
                             out=f"{run_root}/{run_id}/stage1", image=trainer_image,
                             namespace=training_namespace)  # fmt: skip
    one = launch(manifest, hold=True)
    log = one.follow()

    def running() -> bool:
        job = one.tfjob()
        conditions = (job or {}).get("status", {}).get("conditions") or []
        return any(c["type"] == "Running" and c["status"] == "True" for c in conditions)

    wait_for(running, what=f"TFJob {one.job} to run", timeout=300, interval=1)
    deleted = time.monotonic()
    # The kubelet sends SIGTERM and, GRACE_S later, SIGKILL.
    kubectl(cluster, "-n", one.runner.namespace, "delete", "pod", one.pod, "--wait=false")
    wait_for(lambda: one.tfjob() is None, what=f"TFJob {one.job} to be deleted",
             timeout=DELETE_BOUND_S, interval=0.5)  # fmt: skip
    gone = time.monotonic()
    state = one.wait_exit(GRACE_S + 30)
    exited = log.wait_end(30)
    text = log.text()
    # 128 + 15: it ended on SIGTERM by its own hand, not by the kubelet's SIGKILL (137).
    assert state["terminated"]["exitCode"] == 143, f"{state}\n{text[-3000:]}"
    assert "stopped by SIGTERM" in text, text[-3000:]
    assert f"TFJob {training_namespace}/{one.job} deleted" in text, text[-3000:]
    report("pod_deletion_to_tfjob_gone_s", gone - deleted)
    report("pod_deletion_to_launcher_exit_s", exited - deleted)


def test_image_that_cannot_be_pulled_fails_the_launcher_fast(
    launch: Callable[..., Launch],
    monkeypatch: pytest.MonkeyPatch,
    trainer_image: str,
    training_namespace: str,
    split_in_store: str,
    run_root: str,
) -> None:
    run_id = f"kind-launcher-{uuid.uuid4().hex[:8]}"
    # The trainer's repository and a tag that does not exist, at a registry on the node's own
    # loopback where nothing listens: the kubelet's pull fails as a missing tag would, and
    # no request leaves the node (a registry name would be looked up outside).
    repository = trainer_image.rsplit(":", 1)[0].split("/", 1)[1]
    image = f"127.0.0.1:1/{repository}:does-not-exist-{uuid.uuid4().hex[:8]}"
    manifest = step_manifest(monkeypatch, run_id=run_id, data=split_in_store,
                             out=f"{run_root}/{run_id}/stage1", image=image,
                             namespace=training_namespace, workers=1)  # fmt: skip
    one = launch(manifest, "--start-error-timeout", str(START_ERROR_TIMEOUT_S))
    log = one.follow()
    state = one.wait_exit(START_ERROR_TIMEOUT_S + 240)
    ended = log.wait_end(30)
    text = log.text()
    assert state["phase"] == "Failed", f"{state}\n{text[-4000:]}"
    assert state["terminated"]["exitCode"] == 1, f"{state}\n{text[-4000:]}"
    verdict = [line for line in text.splitlines() if "could not start its container" in line]
    assert verdict, text[-4000:]
    assert f"pod {training_namespace}/{one.job}-worker-0" in verdict[-1], verdict[-1]
    assert image in verdict[-1], verdict[-1]
    assert re.search(r"ErrImagePull|ImagePullBackOff", verdict[-1]), verdict[-1]
    # The launcher's contract: a stuck job is deleted before the launcher fails.
    assert "the TFJob was deleted" in verdict[-1], verdict[-1]
    wait_for(lambda: one.tfjob() is None, what=f"TFJob {one.job} to be gone",
             timeout=JOB_GONE_S, interval=1)  # fmt: skip
    pull_error = log.first(r"is not running: (ErrImagePull|ImagePullBackOff)")
    assert pull_error is not None, text[-3000:]
    # The short bound, not the 3 min default nor the pending bound.
    took = ended - pull_error
    assert START_ERROR_TIMEOUT_S - 2 <= took < START_ERROR_TIMEOUT_S + 20, text[-3000:]
    report("pull_error_to_launcher_exit_s", took)
