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
from landmarks.tfjob.launcher import (
    ATTEMPT_ANNOTATION,
    LAUNCH_KEY_LABEL,
    ClusterTFJob,
    launch_identity,
    owner_from_environment,
    run_on_cluster,
)
from landmarks.tfjob.results import JobResult
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
    platform: Platform, core: Any, custom: Any, tmp_path: Path
) -> None:
    name = unique("cancel")
    proc = _cli(platform, _write(tmp_path, scripted_job(name, seconds=600)), "--timeout", "120")
    try:
        wait_for(lambda: get_tfjob(custom, platform.namespace, name), what="the job to exist")
        wait_for(lambda: _pods(core, platform.namespace, name), what="the job's pods")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # what KFP does when the run is cancelled
        # Within the 30 s a pod gets between SIGTERM and SIGKILL.
        output, _ = proc.communicate(timeout=25)
        stopped_in = time.monotonic() - signalled
    finally:
        proc.kill()

    # 128 + SIGTERM, as the pod's status shows a process that SIGTERM ended.
    assert proc.returncode == 143, output
    assert stopped_in < 10, stopped_in
    assert "stopped by SIGTERM" in output and "deleted" in output, output
    assert get_tfjob(custom, platform.namespace, name) is None
    wait_for(lambda: not _pods(core, platform.namespace, name), what="the job's pods to go")


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


def _attempt(job: dict[str, Any] | None) -> tuple[str, str, str]:
    """(uid, attempt annotation, how it ended) of a job."""
    assert job is not None
    ended = [c["type"] for c in job["status"].get("conditions", []) if c["status"] == "True"]
    terminal = [t for t in ended if t in ("Succeeded", "Failed")]
    return (
        job["metadata"]["uid"],
        job["metadata"].get("annotations", {}).get(ATTEMPT_ANNOTATION, ""),
        terminal[-1] if terminal else "",
    )


def _manifest_file(tmp_path: Path, name: str, manifest: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_a_retried_step_replaces_its_failed_job_and_then_keeps_the_success(
    platform: Platform, custom: Any, tmp_path: Path
) -> None:
    run_id, task = unique("run"), "train-stage1"
    name = launch_identity(run_id, task).job_name("again")
    failing = _manifest_file(tmp_path, "fail.yaml", scripted_job("again", seconds=1, exit_code=1))
    # The retry's replicas get past what failed the first time (a flaky read, a lost node).
    healthy = _manifest_file(tmp_path, "ok.yaml", scripted_job("again", seconds=1))
    identity = ("--run-id", run_id, "--task", task, "--timeout", "90")

    first = _cli(platform, failing, *identity)
    output, _ = first.communicate(timeout=120)
    assert first.returncode == 1, output
    failed_uid, attempt, ended = _attempt(get_tfjob(custom, platform.namespace, name))
    assert (attempt, ended) == ("1", "Failed")

    # KFP retries the step: it must train again, not report the old failure.
    second = _cli(platform, healthy, *identity)
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    assert "attempt 1 of 3 failed" in output and "created (attempt 2 of 3)" in output, output
    new_uid, attempt, ended = _attempt(get_tfjob(custom, platform.namespace, name))
    assert new_uid != failed_uid and (attempt, ended) == ("2", "Succeeded")

    # Retried once more (a later step failed the pod, say): the success stands, no training.
    third = _cli(platform, failing, *identity)
    output, _ = third.communicate(timeout=60)
    assert third.returncode == 0, output
    assert "it has ended already, so its result stands" in output
    assert _attempt(get_tfjob(custom, platform.namespace, name)) == (new_uid, "2", "Succeeded")


def test_a_retried_step_stops_replacing_its_failed_job_after_max_attempts(
    platform: Platform, custom: Any, tmp_path: Path
) -> None:
    run_id, task = unique("run"), "train-stage2"
    name = launch_identity(run_id, task).job_name("bounded")
    failing = _manifest_file(tmp_path, "fail.yaml", scripted_job("bounded", seconds=1, exit_code=1))
    identity = ("--run-id", run_id, "--task", task, "--timeout", "90", "--max-attempts", "2")

    uids = []
    for expected in ("1", "2"):
        proc = _cli(platform, failing, *identity)
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 1, output
        uid, attempt, ended = _attempt(get_tfjob(custom, platform.namespace, name))
        assert (attempt, ended) == (expected, "Failed"), output
        uids.append(uid)
    assert uids[0] != uids[1]

    last = _cli(platform, failing, *identity)
    started = time.monotonic()
    output, _ = last.communicate(timeout=60)
    assert last.returncode == 1, output
    assert "attempt 2 of 2 failed already and no attempt is left" in output, output
    assert "attempt 2 of 2, none left: the job is not created again" in output, output
    assert time.monotonic() - started < 30  # it reports; it does not wait for a new job
    assert _attempt(get_tfjob(custom, platform.namespace, name))[0] == uids[1]


class _TimedOutput(io.StringIO):
    """The launcher's output, with when each line arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.start = time.monotonic()
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.lines.append((time.monotonic() - self.start, text))
        return super().write(text)

    def first(self, needle: str) -> float:
        """Seconds from the start until a line containing `needle` came."""
        times = [t for t, line in self.lines if needle in line]
        assert times, f"no line says {needle!r}:\n{self.getvalue()}"
        return times[0]


def test_an_unschedulable_replica_is_reported_at_once_and_fails_the_step_after_its_bound(
    platform: Platform, runner: Any, core: Any, custom: Any
) -> None:
    name = unique("unschedulable")
    # No node has this label: the real kube-scheduler leaves the pods Pending, Unschedulable.
    manifest = scripted_job(name, workers=1, node_selector={"landmarks.test/pool": "none"})
    out = _TimedOutput()

    result = run_on_cluster(
        manifest,
        api_client=runner,
        namespace=platform.namespace,
        output=out,
        owner=None,
        poll_seconds=0.5,
        timeout=90,
        pending_timeout=8,
    )

    assert (result.succeeded, result.reason) == (False, "Unschedulable"), out.getvalue()
    said = out.first("worker-0 is not running: Unschedulable: 0/")
    assert said < 5, out.getvalue()  # in the launcher's log within seconds, not at the end
    assert "the job is stopped if this lasts 8s" in out.getvalue()
    assert "worker-0 stayed Pending for" in result.message
    # An unscheduled pod has no "is on node" line: the verdict is where its name is.
    assert f"pod {platform.namespace}/{name}-worker-0)" in result.message
    assert "didn't match Pod's node affinity/selector" in result.message
    assert "the TFJob was deleted" in result.message
    assert 8 <= result.seconds < 25, result.seconds
    assert get_tfjob(custom, platform.namespace, name) is None
    wait_for(lambda: not _pods(core, platform.namespace, name), what="the job's pods to go")


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (
            "ImagePullBackOff",
            'Back-off pulling image "registry.invalid/landmarks/trainer:1": ErrImagePull: '
            "failed to resolve reference",
        ),
        ("CreateContainerConfigError", 'secret "landmarks-s3" not found'),
    ],
)
def test_a_container_that_cannot_start_is_reported_and_fails_the_step_sooner(
    platform: Platform, runner: Any, custom: Any, reason: str, message: str
) -> None:
    """A pod the kubelet cannot start fails the step after the short bound, not the long one.

    KWOK runs no kubelet: its `pod-cannot-start` stage writes the container status a kubelet
    writes for `reason` (from the pod's `landmarks.test/waiting-reason` annotation). That a
    real kubelet reports these reasons for a missing image or Secret is for the kind tier to
    show (issue 11); here the launcher's reading, reporting and bounds are what is tested.
    """
    name = unique("cannot-start")
    manifest = scripted_job(name, workers=2)
    for replica in manifest["spec"]["tfReplicaSpecs"].values():
        replica["template"]["metadata"]["annotations"].update(
            {"landmarks.test/waiting-reason": reason, "landmarks.test/waiting-message": message}
        )
    out = _TimedOutput()

    result = run_on_cluster(
        manifest,
        api_client=runner,
        namespace=platform.namespace,
        output=out,
        owner=None,
        poll_seconds=0.5,
        timeout=90,
        pending_timeout=60,
        start_error_timeout=5,
    )

    assert (result.succeeded, result.reason) == (False, reason), out.getvalue()
    assert out.first(f"is not running: {reason}: container tensorflow: {message}") < 5
    assert "could not start its container for" in result.message
    assert f"pod {platform.namespace}/{name}-worker-" in result.message
    assert message in result.message and "the TFJob was deleted" in result.message
    assert 5 <= result.seconds < 20, result.seconds  # the start-error bound, not pending's 60
    assert get_tfjob(custom, platform.namespace, name) is None


def test_replica_pods_get_a_memory_backed_dev_shm(
    platform: Platform, runner: Any, core: Any
) -> None:
    name = unique("shm")
    # AllWorkers: the job ends with both pods done, none deleted as still running.
    manifest = scripted_job(name, workers=2, seconds=1, success_policy="AllWorkers")
    result, output = _launch(platform, runner, manifest)

    assert result.succeeded, output
    pods = _pods(core, platform.namespace, name)
    assert len(pods) == 2
    for pod in pods:
        # As the API server stored it: the chart's defaults merged in, nothing pruned.
        shm = [v for v in pod.spec.volumes if v.empty_dir and v.empty_dir.medium == "Memory"]
        assert [(v.name, v.empty_dir.size_limit) for v in shm] == [("dshm", "1Gi")]
        mounts = {m.mount_path: m.name for m in pod.spec.containers[0].volume_mounts}
        assert mounts["/dev/shm"] == "dshm"


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
        with caplog.at_level(logging.INFO, logger="landmarks.tfjob.launcher"):
            final = job.wait(created, deadline=time.monotonic() + 60, resource_version="1")
    finally:
        job.delete()
    assert "410 Gone" in caplog.text
    assert final is not None
    assert any(c["type"] == "Succeeded" for c in final["status"]["conditions"])
