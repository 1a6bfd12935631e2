"""The TFJob launcher, run as the KFP runner, against the real operator and scheduler."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from landmarks.errors import LandmarksError
from landmarks.tfjob.cluster import (
    LAUNCH_KEY_LABEL,
    ClusterTFJob,
    launch_identity,
    owner_from_environment,
    run_on_cluster,
)
from landmarks.tfjob.local import JobResult
from tests.integration.conftest import (
    GPU,
    REPO,
    Platform,
    get_tfjob,
    scripted_job,
    set_behaviour,
    unique,
)
from tests.support.kube import wait_for

JOB_NAME_LABEL = "training.kubeflow.org/job-name"


def _launch(
    platform: Platform, runner: Any, manifest: dict[str, Any], **options: Any
) -> tuple[JobResult, str]:
    out = io.StringIO()
    options.setdefault("timeout", 90)
    options.setdefault("owner", None)
    result = run_on_cluster(
        manifest,
        api_client=runner,
        namespace=platform.namespace,
        output=out,
        poll_seconds=0.5,
        **options,
    )
    return result, out.getvalue()


class _Launcher(threading.Thread):
    """`_launch` in a thread, while the test acts on the cluster."""

    def __init__(self, platform: Platform, runner: Any, manifest: dict[str, Any], **options: Any):
        super().__init__(daemon=True)
        self._args = (platform, runner, manifest)
        self._options = options
        self._outcome: tuple[JobResult, str] | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._outcome = _launch(*self._args, **self._options)
        except BaseException as err:
            self._error = err

    def outcome(self, timeout: float = 120) -> tuple[JobResult, str]:
        self.join(timeout)
        if self._error is not None:
            raise self._error
        assert self._outcome is not None, "the launcher is still running"
        return self._outcome


def _cli(platform: Platform, manifest_path: Path, *args: str) -> subprocess.Popen[str]:
    """`landmarks tfjob run-cluster` in its own process, as the runner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POD_", "KFP_POD_"))}
    command = [sys.executable, "-m", "landmarks.tfjob", "run-cluster", str(manifest_path)]
    command += ["--namespace", platform.namespace, "--kubeconfig", str(platform.runner_kubeconfig)]
    return subprocess.Popen(
        [*command, *args],
        cwd=REPO,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _write(tmp_path: Path, manifest: dict[str, Any]) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def _pods(core: Any, namespace: str, name: str) -> list[Any]:
    return core.list_namespaced_pod(namespace, label_selector=f"{JOB_NAME_LABEL}={name}").items


def _reasons(core: Any, namespace: str, name: str) -> Counter[str]:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return Counter(e.reason for e in events.items)


def test_two_gpu_workers_run_on_the_gpu_pool_and_the_launcher_reports_success(
    platform: Platform, runner: Any, core: Any
) -> None:
    name = unique("two-gpu")
    manifest = scripted_job(name, workers=2, seconds=2, success_policy="AllWorkers")

    result, output = _launch(platform, runner, manifest)

    assert result.succeeded, output
    assert [(r.label, r.exit_code) for r in result.replicas] == [("worker-0", 0), ("worker-1", 0)]
    pods = _pods(core, platform.namespace, name)
    assert sorted(p.metadata.name for p in pods) == [f"{name}-worker-0", f"{name}-worker-1"]
    nodes = {p.spec.node_name for p in pods}
    assert nodes <= platform.gpu_nodes and not nodes & platform.other_nodes, nodes
    for pod in pods:
        # The chart's defaults reached every replica: GPUs, pool, identity, security.
        limits = pod.spec.containers[0].resources.limits or {}
        assert limits.get(GPU) == (str(platform.gpus) if platform.gpus else None)
        assert pod.spec.node_selector == {"cloud.google.com/gke-nodepool": "gpu-pool"}
        assert any(t.key == GPU for t in pod.spec.tolerations)
        assert pod.spec.service_account_name == "landmarks-trainer"
        assert pod.spec.security_context.run_as_non_root is True
    # The operator made a pod and a service per worker.
    reasons = _reasons(core, platform.namespace, name)
    assert reasons["SuccessfulCreatePod"] == 2 and reasons["SuccessfulCreateService"] == 2
    # Each replica's log streamed once, prefixed with its replica, however long it follows.
    for worker in ("worker-0", "worker-1"):
        lines = Counter(line for line in output.splitlines() if line.startswith(f"[{worker}] "))
        assert lines, f"no log lines of {worker}:\n{output}"
        assert max(lines.values()) == 1, lines


def test_a_permanent_exit_code_fails_the_job_and_the_launcher_exits_nonzero_with_the_reason(
    platform: Platform, tmp_path: Path
) -> None:
    name = unique("permanent")
    manifest = scripted_job(name, workers=2, seconds=1, exit_code=1)

    proc = _cli(platform, _write(tmp_path, manifest), "--timeout", "90")
    output, _ = proc.communicate(timeout=120)

    assert proc.returncode == 1, output
    assert f"{platform.namespace}/{name}: Failed (TFJobFailed)" in output
    assert '"Worker" replica(s) failed' in output  # the operator's reason
    assert "exited with code 1" in output


def test_a_retryable_exit_code_restarts_the_worker_and_the_job_still_succeeds(
    platform: Platform, runner: Any, core: Any, custom: Any
) -> None:
    name = unique("retryable")
    # 137 (killed) is retryable under restartPolicy ExitCode; the limit is generous because
    # the operator counts recreated KWOK pods erratically.
    manifest = scripted_job(name, workers=1, seconds=1, exit_code=137, backoff_limit=20)
    launcher = _Launcher(platform, runner, manifest)
    launcher.start()
    try:
        wait_for(
            lambda: _reasons(core, platform.namespace, name)["TFJobRestarting"],
            what="the operator to restart the worker",
        )
        # The fault clears: pods created from now on exit 0.
        job = get_tfjob(custom, platform.namespace, name)
        assert job is not None
        set_behaviour(job, seconds=1, exit_code=0)
        patch = {"spec": {"tfReplicaSpecs": job["spec"]["tfReplicaSpecs"]}}
        custom.patch_namespaced_custom_object(
            "kubeflow.org", "v1", platform.namespace, "tfjobs", name, patch
        )
    finally:
        result, output = launcher.outcome()

    assert result.succeeded, output
    assert "Restarting (TFJobRestarting)" in output
    assert result.replicas[0].restarts >= 1, result.summary()


def test_the_launchers_timeout_deletes_the_job_and_its_pods(
    platform: Platform, runner: Any, core: Any, custom: Any
) -> None:
    name = unique("timeout")
    manifest = scripted_job(name, workers=2, seconds=600)

    result, output = _launch(platform, runner, manifest, timeout=4)

    assert not result.succeeded
    assert result.reason == "DeadlineExceeded", output
    assert "TFJob was deleted" in result.message
    assert get_tfjob(custom, platform.namespace, name) is None
    # The garbage collector removes the replicas with their job.
    wait_for(lambda: not _pods(core, platform.namespace, name), what="the job's pods to go")


def test_sigterm_deletes_the_job_and_fails_the_launcher(
    platform: Platform, custom: Any, tmp_path: Path
) -> None:
    name = unique("cancel")
    proc = _cli(platform, _write(tmp_path, scripted_job(name, seconds=600)), "--timeout", "120")
    try:
        wait_for(lambda: get_tfjob(custom, platform.namespace, name), what="the job to exist")
        proc.send_signal(signal.SIGTERM)  # what KFP does when the run is cancelled
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()

    assert proc.returncode != 0
    assert "stopped by SIGTERM" in output and "deleted" in output, output
    assert get_tfjob(custom, platform.namespace, name) is None


def test_a_retried_launcher_adopts_the_job_it_created(
    platform: Platform, custom: Any, tmp_path: Path
) -> None:
    run_id, task = unique("run"), "train-stage1"
    name = launch_identity(run_id, task).job_name("adopt")
    path = _write(tmp_path, scripted_job("adopt", seconds=6))
    identity = ("--run-id", run_id, "--task", task, "--timeout", "90")

    first = _cli(platform, path, *identity)
    created = wait_for(lambda: get_tfjob(custom, platform.namespace, name), what="the job")
    first.kill()  # the step's pod dies without cleaning up
    first.wait(timeout=30)
    assert get_tfjob(custom, platform.namespace, name) is not None

    second = _cli(platform, path, *identity)
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    assert "adopting the job a previous attempt of this step created" in output
    job = get_tfjob(custom, platform.namespace, name)
    assert job is not None and job["metadata"]["uid"] == created["metadata"]["uid"]

    # Once finished, a retry reports the job's result instead of training again.
    third = _cli(platform, path, *identity)
    output, _ = third.communicate(timeout=60)
    assert third.returncode == 0, output
    assert "adopting" in output and "Succeeded" in output
    jobs = custom.list_namespaced_custom_object(
        "kubeflow.org",
        "v1",
        platform.namespace,
        "tfjobs",
        label_selector=f"{LAUNCH_KEY_LABEL}={name[-10:]}",
    )["items"]
    assert [j["metadata"]["uid"] for j in jobs] == [created["metadata"]["uid"]]


def test_a_job_of_that_name_the_step_did_not_create_is_refused(
    platform: Platform, runner: Any, custom: Any
) -> None:
    manifest = launch_identity(unique("run"), "train-stage1").apply(scripted_job("theirs"))
    name = manifest["metadata"]["name"]
    foreign = scripted_job(name, seconds=600, namespace=platform.namespace)
    custom.create_namespaced_custom_object(
        "kubeflow.org", "v1", platform.namespace, "tfjobs", foreign
    )

    with pytest.raises(LandmarksError, match="already exists and this step did not create it"):
        _launch(platform, runner, manifest)
    job = get_tfjob(custom, platform.namespace, name)
    assert job is not None and LAUNCH_KEY_LABEL not in (job["metadata"].get("labels") or {})
    custom.delete_namespaced_custom_object("kubeflow.org", "v1", platform.namespace, "tfjobs", name)


def _owner_pod(name: str) -> dict[str, Any]:
    """A pod that passes the namespace's restricted Pod Security Standard (KWOK keeps it up)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "containers": [
                {
                    "name": "launcher",
                    "image": "busybox:1.37",
                    "command": ["sleep", "3600"],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }


def test_deleting_the_owner_pod_deletes_the_job(
    platform: Platform, runner: Any, core: Any, custom: Any
) -> None:
    from kubernetes import client

    pod_name = unique("launcher")
    core.create_namespaced_pod(platform.namespace, _owner_pod(pod_name))
    # Found the way a launcher pod finds itself: its name and namespace from the environment,
    # its uid through the API, as the runner.
    owner = owner_from_environment(
        client.CoreV1Api(runner),
        platform.namespace,
        env={"POD_NAME": pod_name, "POD_NAMESPACE": platform.namespace},
    )
    assert owner is not None
    name = unique("owned")
    launcher = _Launcher(platform, runner, scripted_job(name, seconds=600), owner=owner)
    launcher.start()
    try:
        job = wait_for(lambda: get_tfjob(custom, platform.namespace, name), what="the job")
        assert job["metadata"]["ownerReferences"] == [owner.reference()]
        core.delete_namespaced_pod(pod_name, platform.namespace, grace_period_seconds=0)
        # kube-controller-manager's garbage collector deletes what the pod owned.
        wait_for(
            lambda: get_tfjob(custom, platform.namespace, name) is None,
            what="the garbage collector to delete the job",
        )
    finally:
        result, output = launcher.outcome()
    assert (result.succeeded, result.reason) == (False, "Deleted"), output


def test_the_watch_resumes_after_its_resource_version_expired(
    platform: Platform, runner: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("expired")
    job = ClusterTFJob(
        scripted_job(name, seconds=2),
        api_client=runner,
        namespace=platform.namespace,
        owner=None,
        output=io.StringIO(),
        stream_logs=False,
    )
    created = job.submit(job.build())
    try:
        # Resource version 1 is long compacted: the API answers 410 Gone, the launcher reads
        # the job again and watches from there.
        with caplog.at_level(logging.INFO, logger="landmarks.tfjob.cluster"):
            final = job.wait(created, deadline=time.monotonic() + 60, resource_version="1")
    finally:
        job.delete()
    assert "410 Gone" in caplog.text
    assert final is not None
    assert any(c["type"] == "Succeeded" for c in final["status"]["conditions"])
