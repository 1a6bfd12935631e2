"""The images KFP's offline install needs beside its Go backend (scripts/kfp/support-images.sh):
MariaDB from Debian in place of mysql:8.4, configured by the variables KFP's mysql manifests
set, and the `nc` of the deployments' wait-for init containers. Each runs as the manifests run
it; the client is MariaDB's own, from a second container over the Docker network, the way the
API server reaches the database from its pod.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.images.containers import docker
from tests.images.dockerfile import REPO

pytestmark = pytest.mark.images

SUPPORT = REPO / "scripts" / "kfp" / "support-images.sh"
READY_TIMEOUT_S = 60
# KFP's wait-for init container (manifests/kustomize/base/pipeline/*-deployment.yaml), one try.
WAIT_FOR = 'nc -z -w 2 "$WAIT_HOST" "$WAIT_PORT"'


@pytest.fixture(scope="module")
def support_images(python_base_image: str) -> dict[str, str]:
    """mariadb and netcat, rebuilt from this checkout (the builder's cache makes it seconds)."""
    proc = subprocess.run(
        [str(SUPPORT), "--force", "mariadb", "netcat"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "KFP_DEBIAN_BASE": python_base_image},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    mariadb, netcat = proc.stdout.split()
    return {"mariadb": mariadb, "netcat": netcat}


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Ids of the containers a test starts; removed afterwards, by id."""
    started: list[str] = []
    yield started
    for cid in started:
        docker("rm", "-f", "-v", cid, check=False)


def start(started: list[str], image: str, *args: str) -> str:
    cid = docker("run", "-d", *args, image).strip()
    started.append(cid)
    return cid


def logs(cid: str) -> str:
    """Both streams: the entrypoint's errors go to stderr."""
    proc = subprocess.run(
        ["docker", "logs", cid], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.stdout + proc.stderr


def ip_of(cid: str) -> str:
    return docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", cid).strip()


def sql(image: str, host: str, statement: str) -> subprocess.CompletedProcess[str]:
    """MariaDB's client in a container of its own: root, no password, over TCP."""
    return subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "mariadb", image,
         "-h", host, "-uroot", "--batch", "--skip-column-names", "-e", statement],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def wait_ready(image: str, host: str, cid: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if sql(image, host, "SELECT 1").returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(f"MariaDB did not answer within {READY_TIMEOUT_S}s:\n{logs(cid)[-2000:]}")


def test_a_new_database_lets_root_in_from_another_host_without_password(
    support_images: dict[str, str], containers: list[str]
) -> None:
    """What KFP's API server does: root, empty password (mysql-secret), from its pod's address,
    then CREATE DATABASE mlpipeline."""
    image = support_images["mariadb"]
    cid = start(containers, image, "-e", "MYSQL_ALLOW_EMPTY_PASSWORD=true")
    host = ip_of(cid)
    wait_ready(image, host, cid)
    created = sql(image, host, "CREATE DATABASE mlpipeline; SHOW DATABASES LIKE 'mlpipeline'")
    assert created.returncode == 0 and created.stdout.split() == ["mlpipeline"], created.stderr
    user = docker("exec", cid, "id", "-u").strip()
    assert user == "999"  # KFP's mysql deployment: runAsUser 999


def test_a_password_is_required_unless_an_empty_one_is_allowed(
    support_images: dict[str, str], containers: list[str]
) -> None:
    cid = start(containers, support_images["mariadb"])
    code = int(docker("wait", cid, timeout=60).strip())
    assert code == 1
    assert "MYSQL_ALLOW_EMPTY_PASSWORD" in logs(cid)


def test_the_data_outlive_the_container(
    support_images: dict[str, str], containers: list[str]
) -> None:
    """A restarted pod on the same volume finds its databases (no second initialisation)."""
    image = support_images["mariadb"]
    volume = f"landmarks-test-mariadb-{uuid.uuid4().hex[:8]}"
    try:
        first = start(containers, image, "-v", f"{volume}:/var/lib/mysql",
                      "-e", "MYSQL_ALLOW_EMPTY_PASSWORD=true")  # fmt: skip
        wait_ready(image, ip_of(first), first)
        assert sql(image, ip_of(first), "CREATE DATABASE kept").returncode == 0
        docker("stop", "--time", "30", first, timeout=60)
        assert int(docker("inspect", "--format", "{{.State.ExitCode}}", first).strip()) == 0
        second = start(containers, image, "-v", f"{volume}:/var/lib/mysql")
        wait_ready(image, ip_of(second), second)
        found = sql(image, ip_of(second), "SHOW DATABASES LIKE 'kept'")
        assert found.stdout.split() == ["kept"], found.stderr
        assert "initialising" in logs(first) and "initialising" not in logs(second)
    finally:
        for cid in list(containers):
            docker("rm", "-f", cid, check=False)
        containers.clear()
        docker("volume", "rm", "-f", volume, check=False)


def test_the_wait_for_init_container_sees_an_open_port_and_a_closed_one(
    support_images: dict[str, str], containers: list[str]
) -> None:
    database = start(containers, support_images["mariadb"], "-e", "MYSQL_ALLOW_EMPTY_PASSWORD=1")
    host = ip_of(database)
    wait_ready(support_images["mariadb"], host, database)

    def wait_for(port: int) -> int:
        proc = subprocess.run(
            ["docker", "run", "--rm", "--user", "1000", "-e", f"WAIT_HOST={host}",
             "-e", f"WAIT_PORT={port}", support_images["netcat"], "/bin/sh", "-ec", WAIT_FOR],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        return proc.returncode

    assert wait_for(3306) == 0
    assert wait_for(3307) != 0
