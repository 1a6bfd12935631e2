"""The local executor runs a TFJob manifest as real processes with the operator's rules.

The replicas here are small Python programs that follow a plan (exit codes per
incarnation, waits), so each rule is exercised in about a second; the trainer itself
runs under the executor in tests/train.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from landmarks.errors import InputError
from landmarks.tfjob import LocalTFJob, TFJobSpec, run_local

# Each incarnation of a replica records itself in STATE_DIR and acts on PLAN[replica][n]:
# an exit code, "sleep" (until stopped), "kill" (SIGKILL itself) or "wait:<marker>" (exit
# 0 once STATE_DIR/<marker> exists).
REPLICA = """
import json, os, pathlib, signal, sys, time
cfg = json.loads(os.environ.get("TF_CONFIG") or "null")
me = f"{cfg['task']['type']}-{cfg['task']['index']}" if cfg else "single"
print("TF_CONFIG=" + json.dumps(cfg), flush=True)
print("FOO=" + os.environ.get("FOO", ""), flush=True)
state = pathlib.Path(os.environ["STATE_DIR"])
runs = len(list(state.glob(me + ".[0-9]*")))
(state / f"{me}.{runs}").touch()
(state / f"{me}.pid").write_text(str(os.getpid()))
plan = json.loads(os.environ["PLAN"]).get(me, [0])
action = plan[min(runs, len(plan) - 1)]
if action == "sleep":
    time.sleep(600)
elif action == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
elif isinstance(action, str) and action.startswith("wait:"):
    while not (state / action[5:]).exists():
        time.sleep(0.02)
    sys.exit(0)
sys.exit(action)
"""


def _spec(state: Path, plan: dict[str, list[Any]], **fields: Any) -> TFJobSpec:
    env = {"STATE_DIR": str(state), "PLAN": json.dumps(plan), "FOO": "bar"}
    return TFJobSpec(
        name="job", image="unused", command=["python", "-c", REPLICA], env=env, **fields
    )


def _run(spec: TFJobSpec, **options: Any) -> tuple[Any, str]:
    out = io.StringIO()
    options.setdefault("timeout", 60)  # a bug in a rule must not hang the suite
    result = LocalTFJob(spec.to_manifest(), output=out, **options).run()
    return result, out.getvalue()


def _alive(state: Path, replica: str) -> bool:
    pid = int((state / f"{replica}.pid").read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tf_configs(log: str) -> dict[str, dict[str, Any]]:
    configs = {}
    for line in log.splitlines():
        label, _, text = line.partition("] TF_CONFIG=")
        if text:
            configs[label.lstrip("[")] = json.loads(text)
    return configs


def test_each_replica_gets_the_operators_tf_config_and_prefixed_logs(tmp_path: Path) -> None:
    result, log = _run(_spec(tmp_path, {}, workers=2, chief=True))
    assert result.succeeded and result.condition == "Succeeded"

    configs = _tf_configs(log)
    assert set(configs) == {"chief-0", "worker-0", "worker-1"}
    cluster = configs["chief-0"]["cluster"]
    assert list(cluster) == ["chief", "worker"] and len(cluster["worker"]) == 2
    addresses = cluster["chief"] + cluster["worker"]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
    for label, config in configs.items():
        kind, _, index = label.partition("-")
        assert config == {
            "cluster": cluster,
            "task": {"type": kind, "index": int(index)},
            "environment": "cloud",
        }
    assert "[worker-1] FOO=bar" in log


def test_a_single_replica_gets_no_tf_config(tmp_path: Path) -> None:
    result, log = _run(_spec(tmp_path, {}, workers=1))
    assert result.succeeded
    assert "[worker-0] TF_CONFIG=null" in log


def test_retryable_exit_restarts_only_that_replica(tmp_path: Path) -> None:
    plan = {"worker-0": ["wait:worker-1.1"], "worker-1": [138, 0]}
    result, log = _run(_spec(tmp_path, plan, workers=2))
    assert result.succeeded, log
    assert "[executor] worker-1 exited 138 (retryable): restarting it" in log
    restarts = {r.label: r.restarts for r in result.replicas}
    assert restarts == {"worker-0": 0, "worker-1": 1}


def test_a_replica_killed_by_a_signal_counts_as_128_plus_the_signal(tmp_path: Path) -> None:
    plan = {"worker-0": ["wait:worker-1.1"], "worker-1": ["kill", 0]}
    result, log = _run(_spec(tmp_path, plan, workers=2))
    assert result.succeeded
    assert "worker-1 exited 137 (retryable)" in log


def test_permanent_failure_fails_the_job_and_stops_the_others(tmp_path: Path) -> None:
    plan = {"worker-0": ["sleep"], "worker-1": [3]}
    result, _ = _run(_spec(tmp_path, plan, workers=2))
    assert not result.succeeded
    assert result.reason == "ReplicaFailed" and "worker-1 exited 3" in result.message
    by_label = {r.label: r for r in result.replicas}
    assert by_label["worker-1"].exit_code == 3 and by_label["worker-1"].restarts == 0
    assert by_label["worker-0"].exit_code is None  # stopped, not finished
    assert not _alive(tmp_path, "worker-0")


def test_backoff_limit_ends_repeated_restarts(tmp_path: Path) -> None:
    plan = {"worker-0": ["sleep"], "worker-1": [139]}
    result, _ = _run(_spec(tmp_path, plan, workers=2, backoff_limit=2))
    assert not result.succeeded and result.reason == "BackoffLimitExceeded"
    assert len(list(tmp_path.glob("worker-1.[0-9]"))) == 3  # the first run and 2 restarts
    assert not _alive(tmp_path, "worker-0")


def test_on_failure_restarts_permanent_codes_and_never_restarts_nothing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plan = {"worker-0": ["wait:worker-1.1"], "worker-1": [1, 0]}
    result, _ = _run(_spec(tmp_path / "a", plan, workers=2, restart_policy="OnFailure"))
    assert result.succeeded

    plan = {"worker-0": ["sleep"], "worker-1": [138, 0]}
    result, _ = _run(_spec(tmp_path / "b", plan, workers=2, restart_policy="Never"))
    assert not result.succeeded and result.reason == "ReplicaFailed"


def test_worker_zero_decides_success_without_a_chief(tmp_path: Path) -> None:
    plan = {"worker-0": [0], "worker-1": ["sleep"]}
    result, _ = _run(_spec(tmp_path, plan, workers=2), grace_seconds=0.2)
    assert result.succeeded
    assert {r.label: r.exit_code for r in result.replicas} == {"worker-0": 0, "worker-1": None}
    assert not _alive(tmp_path, "worker-1")


def test_all_workers_policy_waits_for_every_worker(tmp_path: Path) -> None:
    plan = {"worker-0": [0], "worker-1": ["wait:worker-0.0"]}
    spec = _spec(tmp_path, plan, workers=2, success_policy="AllWorkers")
    result, _ = _run(spec, grace_seconds=0)
    assert result.succeeded
    assert {r.label: r.exit_code for r in result.replicas} == {"worker-0": 0, "worker-1": 0}


def test_the_chief_decides_success_when_there_is_one(tmp_path: Path) -> None:
    plan = {"chief-0": ["wait:worker-0.0"], "worker-0": [0]}
    result, _ = _run(_spec(tmp_path, plan, workers=1, chief=True))
    assert result.succeeded
    assert {r.label: r.exit_code for r in result.replicas}["chief-0"] == 0


def test_timeout_stops_every_replica(tmp_path: Path) -> None:
    plan = {"worker-0": ["sleep"], "worker-1": ["sleep"]}
    result, log = _run(_spec(tmp_path, plan, workers=2), timeout=1.5)
    assert not result.succeeded and result.reason == "DeadlineExceeded"
    assert not _alive(tmp_path, "worker-0") and not _alive(tmp_path, "worker-1")
    assert "[executor] job: Failed (DeadlineExceeded)" in log


def test_active_deadline_of_the_run_policy_is_honoured(tmp_path: Path) -> None:
    plan = {"single": ["sleep"]}  # one replica: no TF_CONFIG
    result, _ = _run(_spec(tmp_path, plan, workers=1, active_deadline_seconds=1))
    assert result.reason == "DeadlineExceeded"


def test_manifest_without_a_tensorflow_container_is_refused(tmp_path: Path) -> None:
    manifest = _spec(tmp_path, {}, workers=1).to_manifest()
    manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["name"] = "x"
    with pytest.raises(InputError, match="no container named 'tensorflow'"):
        run_local(manifest)


def test_env_from_a_secret_cannot_run_locally(tmp_path: Path) -> None:
    manifest = _spec(tmp_path, {}, workers=1).to_manifest()
    container = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s"}}})
    with pytest.raises(InputError, match="'TOKEN' uses valueFrom"):
        run_local(manifest)


def test_run_local_command_reads_a_yaml_manifest_and_reports_the_outcome(tmp_path: Path) -> None:
    for name, plan, expected in (("ok", {}, 0), ("bad", {"worker-1": [5]}, 1)):
        state = tmp_path / name
        state.mkdir()
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(_spec(state, plan, workers=2).to_manifest()))
        done = subprocess.run(
            [sys.executable, "-m", "landmarks.tfjob", "run-local", str(path), "--timeout", "60"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == expected, done.stdout + done.stderr
        assert "[worker-1] TF_CONFIG=" in done.stdout
