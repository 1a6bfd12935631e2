"""A real S3-compatible server for tests: SeaweedFS, which Kubeflow Pipelines deploys.

`scripts/s3/build.sh` compiles the pinned `weed` binary once per machine (cached under
~/.cache/landmarks); `SeaweedFS.start` runs `weed server -s3` on 127.0.0.1 with free ports
and an identities file holding an admin and a read-only user, and `stop` ends it by pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "s3" / "build.sh"
# Long enough for a cold build on two busy cores (measured: see scripts/s3/build.sh).
BUILD_TIMEOUT_S = 1800
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


ADMIN = Credentials("landmarks-admin", "landmarks-admin-secret")
READER = Credentials("landmarks-reader", "landmarks-reader-secret")


def weed_binary() -> Path:
    """The cached `weed`, built first if needed; RuntimeError says how to build it by hand."""
    try:
        proc = subprocess.run(
            [str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"{BUILD_SCRIPT} did not finish in {BUILD_TIMEOUT_S}s; run `make s3-server` "
            "once and rerun the tests"
        ) from None
    if proc.returncode != 0:
        raise RuntimeError(
            f"the S3 test server (SeaweedFS) could not be built; `make s3-server` (or "
            f"{BUILD_SCRIPT}) builds it:\n{proc.stderr[-3000:]}"
        )
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class SeaweedFS:
    """One `weed server` (master, volume, filer and S3 gateway) on 127.0.0.1."""

    binary: Path
    workdir: Path
    s3_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def start(self, attempts: int = 3) -> SeaweedFS:
        """Start and wait until S3 answers; new ports when one was taken meanwhile."""
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
                return self
            except PortTaken:
                self.stop()
                if attempt == attempts:
                    raise
        return self

    def _start_once(self) -> None:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.workdir / "s3.json"
        identities.write_text(json.dumps(_identities()))
        self.log = self.workdir / "weed.log"
        # Free now, but a port can still be taken before weed binds it (an outgoing
        # connection gets one from the same range): start() then tries other ports.
        self.ports = {
            name: free_port()
            for name in (
                "s3.port",
                "s3.port.grpc",
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
            )
        }
        self.s3_port = self.ports["s3.port"]
        argv = [
            str(self.binary),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-filer",
            "-s3",
            f"-s3.config={identities}",
            # As on AWS: a write to a missing bucket fails (SeaweedFS creates it by default).
            "-s3.autoCreateBucket=false",
            # Unix sockets in the test's folder rather than /tmp.
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            # Side servers the tests do not use, and no reports to the internet.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumePreallocate=false",
            "-master.volumeSizeLimitMB=64",
            # Each bucket is a collection that grows its own volumes: no fixed cap.
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        with self.log.open("wb") as out:
            # Its own process group: stop() ends the server and nothing else.
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Until the S3 gateway answers with its identities loaded (bounded)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.tail()
                if "address already in use" in tail:
                    raise PortTaken(tail)
                raise RuntimeError(f"weed exited with {self.proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/status", timeout=2) as reply:
                    if reply.status == 200 and self._s3_answers():
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"SeaweedFS S3 not ready after {START_TIMEOUT_S}s:\n{self.tail()}")

    def _s3_answers(self) -> bool:
        """A signed ListBuckets succeeds: the gateway reached the filer and knows the admin."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client(ADMIN).list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def client(self, creds: Credentials = ADMIN):  # -> botocore S3 client
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """End the server by its process group; its data is thrown away, so no long goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                # weed's shutdown hooks can wait on peers that are already gone.
                self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # weed puts its gRPC sockets in /tmp by port, whatever the flags: remove ours.
        for name in ("master", "volume", "filer"):
            port = self.ports.get(f"{name}.port.grpc")
            if port:
                Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)


class PortTaken(RuntimeError):
    """A port weed was given was taken before it could bind it."""


def _identities() -> dict[str, object]:
    return {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ADMIN.access_key, "secretKey": ADMIN.secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": "reader",
                "credentials": [{"accessKey": READER.access_key, "secretKey": READER.secret_key}],
                "actions": ["Read", "List"],
            },
        ]
    }


# The environment a test's storage calls see; anything a developer's shell or ~/.aws
# holds is masked, so only what a fixture sets decides the outcome.
_MASKED_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "LANDMARKS_MINIO_ENDPOINT",
)


def store_env(server: SeaweedFS, scheme: str, creds: Credentials = ADMIN) -> dict[str, str]:
    """What a process needs to reach `server` through `scheme` (`s3://` or `minio://`)."""
    env = {
        **creds.env(),
        "AWS_REGION": "us-east-1",
        # No instance-metadata lookups, and no shared config files, from a test.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if scheme == "minio://":
        env["LANDMARKS_MINIO_ENDPOINT"] = server.endpoint
    else:
        env["AWS_ENDPOINT_URL_S3"] = server.endpoint
    return env


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the session; fails with how to build it when it cannot be built."""
    try:
        binary = weed_binary()
    except RuntimeError as err:
        pytest.fail(str(err))
    server = SeaweedFS(binary, tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        yield server
    finally:
        server.stop()


def _bucket(server: SeaweedFS, scheme: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in _MASKED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in store_env(server, scheme).items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    server.client().create_bucket(Bucket=bucket)
    return f"{scheme}{bucket}"


@pytest.fixture
def minio_bucket(s3_server: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket reached as KFP reaches its store; returns `minio://name`."""
    return _bucket(s3_server, "minio://", monkeypatch)


@pytest.fixture
def s3_bucket(s3_server: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket reached as AWS_ENDPOINT_URL_S3 directs boto3; returns `s3://name`."""
    return _bucket(s3_server, "s3://", monkeypatch)
