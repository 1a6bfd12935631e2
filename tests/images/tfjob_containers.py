"""A TFJob manifest run as Docker containers, the way the training-operator runs its pods.

The manifest comes from `landmarks.tfjob.spec` (what the launcher submits). Each replica
becomes one container of the manifest's image, running its `tensorflow` container's
command and args with its env, on a user-defined Docker network where the container
answers to the name of the Service the operator creates for that replica
(`<job>-<type>-<index>.<namespace>.svc`); `TF_CONFIG` names those addresses and the
replica port, exactly as the operator writes it. The operator's rules are followed:
`restartPolicy: ExitCode` restarts a replica that exits 128 or above (SIGKILL is 137, the
trainer's lost peer 138) in place (`docker start` of the same container: same name on
the network, fresh /tmp, like a restarted pod), and fails the job on 1..127; restarts
count against `runPolicy.backoffLimit`; without a chief, worker 0 exiting 0 is success.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from landmarks.tfjob.local_executor import tf_config
from landmarks.tfjob.results import REPLICA_TYPES
from landmarks.tfjob.spec import CONTAINER_NAME, DEFAULT_PORT, PORT_NAME, find_container
from tests.images.containers import Container, ContainerRunner, docker


def service_host(job: str, replica_type: str, index: int, namespace: str) -> str:
    """The DNS name of a replica's Service, as the training-operator names it."""
    return f"{job}-{replica_type.lower()}-{index}.{namespace}.svc"


def replica_port(container: Mapping[str, Any]) -> int:
    for port in container.get("ports", []):
        if port.get("name") == PORT_NAME:
            return int(port["containerPort"])
    return DEFAULT_PORT


def operator_cluster(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """TF_CONFIG's `cluster`: every replica's Service host and port, in the operator's order."""
    name = manifest["metadata"]["name"]
    namespace = manifest["metadata"].get("namespace", "default")
    specs = manifest["spec"]["tfReplicaSpecs"]
    cluster: dict[str, list[str]] = {}
    for rtype in (t for t in REPLICA_TYPES if t in specs):
        port = replica_port(find_container(specs[rtype], rtype))
        count = int(specs[rtype].get("replicas", 1))
        cluster[rtype.lower()] = [
            f"{service_host(name, rtype, i, namespace)}:{port}" for i in range(count)
        ]
    return cluster


@dataclass
class ReplicaContainer:
    replica_type: str
    index: int
    host: str
    container: Container
    restarts: int = 0
    exit_code: int | None = None  # the last exit; None while running

    @property
    def label(self) -> str:
        return f"{self.replica_type.lower()}-{self.index}"

    def state(self) -> tuple[bool, int]:
        """(running, exit code of the last run) from the engine."""
        text = docker(
            "inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", self.container.id
        )
        running, code = text.split()
        return running == "true", int(code)

    def stderr(self) -> str:
        return self.container._streams()[1]


@dataclass
class JobOutcome:
    succeeded: bool
    reason: str
    seconds: float
    events: list[str] = field(default_factory=list)


class ContainerTFJob:
    """The replicas of one TFJob manifest as containers on `network`; `supervise` runs it."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        runner: ContainerRunner,
        *,
        network: str,
        volumes: Mapping[str, str],
        images: Mapping[str, str],
    ) -> None:
        self.manifest = manifest
        self.runner = runner
        self.network = network
        self.volumes = dict(volumes)
        # Image reference -> role: the runner starts images by role.
        self.roles = {ref: role for role, ref in images.items()}
        self.backoff_limit = manifest["spec"].get("runPolicy", {}).get("backoffLimit")
        self.replicas: list[ReplicaContainer] = []
        self.events: list[str] = []
        self._start_time = 0.0

    def start(self) -> None:
        cluster = operator_cluster(self.manifest)
        specs = self.manifest["spec"]["tfReplicaSpecs"]
        name = self.manifest["metadata"]["name"]
        namespace = self.manifest["metadata"].get("namespace", "default")
        distributed = sum(int(s.get("replicas", 1)) for s in specs.values()) > 1
        self._start_time = time.monotonic()
        for rtype in (t for t in REPLICA_TYPES if t in specs):
            spec = specs[rtype]
            if spec.get("restartPolicy") != "ExitCode":
                raise ValueError(f"{rtype}: only restartPolicy ExitCode is emulated here")
            container = find_container(spec, rtype)
            assert container["name"] == CONTAINER_NAME
            role = self.roles[container["image"]]  # KeyError: the manifest names no built image
            command = [str(c) for c in container.get("command", [])]
            args = [str(a) for a in container.get("args", [])]
            env_base = {e["name"]: str(e["value"]) for e in container.get("env", [])}
            for index in range(int(spec.get("replicas", 1))):
                env = dict(env_base)
                if distributed:
                    env["TF_CONFIG"] = json.dumps(tf_config(cluster, rtype, index))
                host = service_host(name, rtype, index, namespace)
                # A pod's `command` replaces the image's entrypoint and `args` its CMD.
                started = self.runner.start(
                    role,
                    *command[1:],
                    *args,
                    entrypoint=command[0] if command else None,
                    volumes=self.volumes,
                    env=env,
                    network=self.network,
                    extra=[f"--network-alias={host}", f"--hostname={host.split('.')[0]}"],
                )
                self.replicas.append(ReplicaContainer(rtype, index, host, started))
        self._say(f"started {len(self.replicas)} replica container(s)")

    def replica(self, label: str) -> ReplicaContainer:
        (found,) = [r for r in self.replicas if r.label == label]
        return found

    def note(self, message: str) -> None:
        """Add a line to the job's timeline (what a test did to it, for instance)."""
        self._say(message)

    def _say(self, message: str) -> None:
        self.events.append(f"[{time.monotonic() - self._start_time:6.1f}s] {message}")

    def _leader(self) -> ReplicaContainer:
        for rtype in ("Chief", "Master", "Worker"):
            for r in self.replicas:
                if r.replica_type == rtype and r.index == 0:
                    return r
        raise AssertionError("no leader replica")

    def supervise(
        self,
        timeout: float,
        before_restart: Callable[[ReplicaContainer, int], None] | None = None,
        on_poll: Callable[[ContainerTFJob], None] | None = None,
        grace: float = 60.0,
    ) -> JobOutcome:
        """Follow the replicas until the job succeeds or fails (bounded by `timeout`)."""
        restarts = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if on_poll is not None:
                on_poll(self)
            for r in self.replicas:
                if r.exit_code is not None:
                    continue
                running, code = r.state()
                if running:
                    continue
                r.exit_code = code
                if code >= 128:
                    restarts += 1
                    if self.backoff_limit is not None and restarts > self.backoff_limit:
                        return self._end(False, f"{r.label} exited {code}: backoff limit reached")
                    self._say(f"{r.label} exited {code} (retryable): restarting it")
                    if before_restart is not None:
                        before_restart(r, code)
                    docker("start", r.container.id)
                    r.restarts += 1
                    r.exit_code = None
                elif code != 0:
                    return self._end(False, f"{r.label} exited {code}:\n{r.stderr()[-3000:]}")
                else:
                    self._say(f"{r.label} exited 0")
            if self._leader().exit_code == 0:
                # The others finish the same last collectives (saving); give them time.
                end = time.monotonic() + grace
                for r in self.replicas:
                    if r.exit_code is None:
                        r.exit_code = r.container.wait(max(1.0, end - time.monotonic())).returncode
                        self._say(f"{r.label} exited {r.exit_code}")
                return self._end(True, "the leader exited 0")
            time.sleep(0.2)
        return self._end(False, f"still running after {timeout:.0f}s")

    def _end(self, ok: bool, reason: str) -> JobOutcome:
        seconds = time.monotonic() - self._start_time
        self._say(("Succeeded: " if ok else "Failed: ") + reason)
        return JobOutcome(ok, reason, seconds, list(self.events))

    def logs(self) -> str:
        return "\n".join(f"--- {r.label}\n{r.container.logs()[-4000:]}" for r in self.replicas)
