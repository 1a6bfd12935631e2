"""Running the project's built images in tests: a thin, bounded wrapper of the docker CLI.

Every container starts hardened the way the chart runs it (read-only root filesystem,
/tmp as the only writable scratch, no capabilities, no privilege escalation, no network
unless a test asks for one), carries a label naming the test session, and is removed by
its container id when the test ends, whatever happened.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Seconds one docker CLI call that does not run a workload (inspect, rm, create) may take.
CLI_TIMEOUT_S = 120
# /tmp as a Kubernetes emptyDir behaves: writable by uid 1000, executable (TensorFlow and
# pip may run helpers from there).
TMPFS = "/tmp:rw,nosuid,nodev,exec,mode=1777"
HARDENING = (
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
)
LABEL = "org.landmarks-platform.test-session"


class DockerError(RuntimeError):
    """A docker CLI call failed; the message has the command and docker's own output."""


def docker_cli() -> str | None:
    return shutil.which("docker")


def docker(*args: str, timeout: float = CLI_TIMEOUT_S, check: bool = True) -> str:
    """Run `docker ARGS`, return stdout; raise DockerError with stderr when it fails."""
    exe = docker_cli()
    if exe is None:
        raise DockerError("the docker CLI is not on PATH")
    try:
        proc = subprocess.run(
            [exe, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise DockerError(f"docker {' '.join(args)}: no answer within {timeout:.0f}s") from err
    if check and proc.returncode != 0:
        raise DockerError(
            f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.stdout


def engine_problem() -> str | None:
    """Why no Docker engine can be used, or None when one answers."""
    if docker_cli() is None:
        return "the docker CLI is not on PATH"
    try:
        docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    except DockerError as err:
        return str(err)
    return None


def image_exists(ref: str) -> bool:
    return bool(docker("image", "inspect", "--format", "{{.Id}}", ref, check=False).strip())


@dataclass
class Result:
    """What a finished container left: its exit status and its output streams."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> Result:
        if self.returncode != 0:
            raise AssertionError(
                f"container `{' '.join(self.args)}` exited {self.returncode}\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
            )
        return self


@dataclass
class Container:
    """A started container; `wait` and `logs` are bounded, `remove` is by id."""

    id: str
    image: str
    args: list[str]

    def wait(self, timeout: float) -> Result:
        try:
            code = int(docker("wait", self.id, timeout=timeout).strip())
        except DockerError as err:
            raise AssertionError(
                f"container {self.id[:12]} ({' '.join(self.args)}) did not finish within "
                f"{timeout:.0f}s\n{self.logs()}"
            ) from err
        return self._result(code)

    def logs(self) -> str:
        return self._streams()[0] + self._streams()[1]

    def ip_address(self, network: str) -> str:
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
        return docker("inspect", "--format", fmt, self.id).strip()

    def running(self) -> bool:
        return docker("inspect", "--format", "{{.State.Running}}", self.id).strip() == "true"

    def _streams(self) -> tuple[str, str]:
        exe = docker_cli()
        assert exe is not None
        proc = subprocess.run(
            [exe, "logs", self.id],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        return proc.stdout, proc.stderr

    def _result(self, code: int) -> Result:
        stdout, stderr = self._streams()
        return Result(self.args, code, stdout, stderr)

    def remove(self) -> None:
        docker("rm", "--force", "--volumes", self.id, check=False)


@dataclass
class ContainerRunner:
    """Starts containers from the role images and removes every one it started."""

    images: Mapping[str, str]  # role -> image reference
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: list[Container] = field(default_factory=list)

    def create_args(
        self,
        role: str,
        args: Sequence[str],
        *,
        volumes: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        network: str = "none",
        user: str | None = None,
        read_only: bool = True,
        workdir: str | None = None,
        entrypoint: str | None = None,
        extra: Sequence[str] = (),
    ) -> list[str]:
        if role not in self.images:
            raise KeyError(f"no image for role {role!r}; roles: {', '.join(self.images)}")
        opts = [
            "create",
            f"--label={LABEL}={self.session}",
            f"--tmpfs={TMPFS}",
            f"--network={network}",
            *(h for h in HARDENING if read_only or h != "--read-only"),
        ]
        for host, target in (volumes or {}).items():
            opts.append(f"--volume={host}:{target}")
        for key, value in (env or {}).items():
            opts.append(f"--env={key}={value}")
        if user is not None:
            opts.append(f"--user={user}")
        if workdir is not None:
            opts.append(f"--workdir={workdir}")
        if entrypoint is not None:
            opts.append(f"--entrypoint={entrypoint}")
        return [*opts, *extra, self.images[role], *args]

    def start(self, role: str, *args: str, **options) -> Container:
        """Start a container in the background; the caller waits for it (bounded)."""
        cid = docker(*self.create_args(role, args, **options)).strip()
        container = Container(cid, self.images[role], list(args))
        self.started.append(container)
        docker("start", cid)
        return container

    def run(self, role: str, *args: str, timeout: float = 300, **options) -> Result:
        """Run a container to its end and return its exit status and output.

        Options: volumes={host: target}, env={name: value}, network (default none),
        user, read_only (default True), workdir, entrypoint, extra (more docker flags).
        """
        container = self.start(role, *args, **options)
        try:
            return container.wait(timeout)
        finally:
            container.remove()

    def cleanup(self) -> None:
        for container in self.started:
            container.remove()
        self.started.clear()
