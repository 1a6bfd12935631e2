"""Run a TFJob manifest as local processes, the way the training-operator would run pods.

For the embedded default (no cluster) and for tests: the manifest built by
`landmarks.tfjob.spec` is executed as is. Each replica is a process running its
`tensorflow` container's command and args with the container's env, plus a `TF_CONFIG`
identical in shape to the operator's but with `127.0.0.1:<free port>` addresses. The
operator's rules are followed:

- `TF_CONFIG` only when the job has more than one replica;
- `restartPolicy`: `ExitCode` restarts a replica that exits 128 or above (a signal, or
  the trainer's "lost peer" 138) and fails the job on 1..127; `OnFailure` and `Always`
  restart on any failure; `Never` never restarts. Restarts count against
  `runPolicy.backoffLimit`;
- success: the chief (or master) exits 0; without one, worker 0 exits 0, or every
  worker with `successPolicy: AllWorkers`;
- a failure, `runPolicy.activeDeadlineSeconds` or the caller's timeout stops every
  replica (SIGTERM to its process group, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from landmarks.errors import InputError
from landmarks.tfjob.results import (
    REPLICA_TYPES,
    JobResult,
    ReplicaOutcome,
    container_exit_code,
    job_succeeded,
    restarts_replica,
)
from landmarks.tfjob.spec import find_container

log = logging.getLogger(__name__)

_PYTHON_NAMES = {"python", "python3", f"python{sys.version_info.major}.{sys.version_info.minor}"}


@dataclass
class _Replica:
    outcome: ReplicaOutcome
    argv: list[str]
    env: dict[str, str]
    restart_policy: str
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _local_argv(container: Mapping[str, Any], replica_type: str) -> list[str]:
    argv = [str(a) for a in [*container.get("command", []), *container.get("args", [])]]
    if not argv:
        raise InputError(
            f"replica {replica_type} relies on the image's entrypoint; give its container a "
            "command (e.g. python -m landmarks.train) so it can run locally",
            field=f"spec.tfReplicaSpecs.{replica_type}.template.spec.containers[].command",
        )
    if Path(argv[0]).name in _PYTHON_NAMES:
        argv[0] = sys.executable  # the image's python is this environment's here
    return argv


def _container_env(container: Mapping[str, Any], replica_type: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env", []) or []:
        if "value" not in item:
            raise InputError(
                f"env {item.get('name')!r} uses valueFrom, which needs a cluster",
                field=f"spec.tfReplicaSpecs.{replica_type}.template.spec.containers[].env",
            )
        env[str(item["name"])] = str(item["value"])
    return env


def tf_config(cluster: Mapping[str, list[str]], replica_type: str, index: int) -> dict[str, Any]:
    """TF_CONFIG as the operator writes it: cluster, task, environment "cloud"."""
    return {
        "cluster": {k: list(v) for k, v in cluster.items()},
        "task": {"type": replica_type.lower(), "index": index},
        "environment": "cloud",
    }


class LocalTFJob:
    """One execution of a TFJob manifest; `run()` blocks until it ends."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        *,
        timeout: float | None = None,
        output: TextIO | None = None,
        cwd: str | Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        grace_seconds: float = 30.0,
    ) -> None:
        if manifest.get("kind") != "TFJob":
            raise InputError(f"not a TFJob manifest (kind {manifest.get('kind')!r})", field="kind")
        spec = manifest.get("spec") or {}
        specs = spec.get("tfReplicaSpecs") or {}
        if not specs:
            raise InputError("no replicas", field="spec.tfReplicaSpecs")
        unknown = sorted(set(specs) - set(REPLICA_TYPES))
        if unknown:
            raise InputError(
                f"unknown replica types {', '.join(unknown)}", field="spec.tfReplicaSpecs"
            )
        run_policy = spec.get("runPolicy") or {}
        self.name = (manifest.get("metadata") or {}).get("name", "tfjob")
        self.success_policy = spec.get("successPolicy") or ""
        self.backoff_limit = run_policy.get("backoffLimit")
        deadlines = [t for t in (timeout, run_policy.get("activeDeadlineSeconds")) if t]
        self.deadline_seconds = min(deadlines) if deadlines else None
        self.output = output or sys.stdout
        self.cwd = str(cwd) if cwd else None
        self.grace_seconds = grace_seconds
        self._lock = threading.Lock()

        ordered = [t for t in REPLICA_TYPES if t in specs]
        counts = {t: int(specs[t].get("replicas", 1)) for t in ordered}
        cluster = {
            t.lower(): [f"127.0.0.1:{_free_port()}" for _ in range(counts[t])]
            for t in ordered
            if counts[t]
        }
        distributed = sum(counts.values()) != 1  # the operator's isDistributed
        self.replicas: list[_Replica] = []
        for rtype in ordered:
            container = find_container(specs[rtype], rtype)
            argv = _local_argv(container, rtype)
            base_env = {**os.environ, **(extra_env or {}), **_container_env(container, rtype)}
            for index in range(counts[rtype]):
                env = dict(base_env)
                if distributed:
                    env["TF_CONFIG"] = json.dumps(tf_config(cluster, rtype, index))
                else:
                    env.pop("TF_CONFIG", None)
                self.replicas.append(
                    _Replica(
                        ReplicaOutcome(rtype, index),
                        argv,
                        env,
                        specs[rtype].get("restartPolicy") or "Never",
                    )
                )

    # -- processes ---------------------------------------------------------------

    def _emit(self, line: str) -> None:
        with self._lock:
            self.output.write(line if line.endswith("\n") else line + "\n")
            self.output.flush()

    def _start(self, replica: _Replica) -> None:
        proc = subprocess.Popen(
            replica.argv,
            env=replica.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )
        replica.proc = proc
        replica.outcome.exit_code = None
        prefix = f"[{replica.outcome.label}] "

        def pump() -> None:
            assert proc.stdout is not None
            for raw in iter(proc.stdout.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\n")
                replica.outcome.tail.append(text)
                self._emit(prefix + text)
            proc.stdout.close()

        replica.reader = threading.Thread(target=pump, name=prefix.strip(), daemon=True)
        replica.reader.start()

    def _stop(self, replicas: list[_Replica], wait: float = 10.0) -> None:
        running = [r for r in replicas if r.proc is not None and r.proc.poll() is None]
        for r in running:
            assert r.proc is not None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(r.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        for r in running:
            assert r.proc is not None
            try:
                r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(r.proc.pid, signal.SIGKILL)
                r.proc.wait()
        for r in replicas:
            if r.reader is not None:
                r.reader.join(timeout=5)

    # -- the job -----------------------------------------------------------------

    def run(self) -> JobResult:
        start = time.monotonic()
        restarts = 0
        self._emit(f"[executor] {self.name}: starting {len(self.replicas)} replica(s)")
        for replica in self.replicas:
            self._start(replica)
        try:
            while True:
                for replica in self.replicas:
                    proc = replica.proc
                    if proc is None or replica.outcome.exit_code is not None:
                        continue
                    if proc.poll() is None:
                        continue
                    if replica.reader is not None:
                        replica.reader.join(timeout=5)  # the last lines, before deciding
                    code = container_exit_code(proc.returncode)
                    replica.outcome.exit_code = code
                    label = replica.outcome.label
                    if restarts_replica(replica.restart_policy, code):
                        restarts += 1
                        if self.backoff_limit is not None and restarts > self.backoff_limit:
                            return self._finish(
                                start,
                                False,
                                "BackoffLimitExceeded",
                                f"{label} exited {code}; the job reached its backoff limit "
                                f"({self.backoff_limit} restarts)",
                            )
                        replica.outcome.restarts += 1
                        self._emit(
                            f"[executor] {label} exited {code} (retryable): restarting it "
                            f"(restart {restarts}"
                            + (
                                f" of {self.backoff_limit})"
                                if self.backoff_limit is not None
                                else ")"
                            )
                        )
                        self._start(replica)
                    elif code != 0:
                        tail = "\n".join(list(replica.outcome.tail)[-5:])
                        return self._finish(
                            start, False, "ReplicaFailed", f"{label} exited {code}:\n{tail}"
                        )
                if job_succeeded((r.outcome for r in self.replicas), self.success_policy):
                    return self._finish(start, True, "Succeeded", "the job's leader exited 0")
                if (
                    self.deadline_seconds is not None
                    and time.monotonic() - start > self.deadline_seconds
                ):
                    return self._finish(
                        start,
                        False,
                        "DeadlineExceeded",
                        f"still running after {self.deadline_seconds}s",
                    )
                time.sleep(0.1)
        finally:
            # Whatever ended the job (or interrupted this process), leave nothing behind.
            self._stop(self.replicas, wait=2.0)

    def _finish(self, start: float, ok: bool, reason: str, message: str) -> JobResult:
        if ok:
            # The others are usually finishing the same final collectives (saving).
            deadline = time.monotonic() + self.grace_seconds
            for r in self.replicas:
                if r.proc is not None and r.outcome.exit_code is None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for r in self.replicas:
            if r.proc is not None and r.outcome.exit_code is None and r.proc.poll() is not None:
                r.outcome.exit_code = container_exit_code(r.proc.returncode)  # ended on its own
        self._stop(self.replicas)  # the rest are stopped: their exit_code stays None
        result = JobResult(ok, reason, message, [r.outcome for r in self.replicas], 0.0)
        result.seconds = time.monotonic() - start
        self._emit(f"[executor] {self.name}: {result.summary()}")
        return result


def run_local(
    manifest: Mapping[str, Any],
    *,
    timeout: float | None = None,
    output: TextIO | None = None,
    cwd: str | Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    grace_seconds: float = 30.0,
) -> JobResult:
    """Run a TFJob manifest as local processes and return how it ended."""
    return LocalTFJob(
        manifest,
        timeout=timeout,
        output=output,
        cwd=cwd,
        extra_env=extra_env,
        grace_seconds=grace_seconds,
    ).run()
