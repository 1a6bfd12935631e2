"""Fixtures for the tests that run the built images (pytest marker `images`).

`make test-images` builds the images first (`make images PUSH=0`, with BASE_IMAGES=standin
on machines without Docker Hub) and then runs `pytest -m images tests/images`. These
fixtures fail, never skip, when the engine or an image is missing: a suite selected to
test images must not pass by testing nothing. `make test` deselects the marker.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from landmarks import config
from tests.images.containers import ContainerRunner, docker, engine_problem, image_exists
from tests.images.dockerfile import REPO, parse

BUILD_HINT = "make test-images (add BASE_IMAGES=standin where Docker Hub cannot be reached)"


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The server version of a Docker engine that answers."""
    problem = engine_problem()
    if problem is not None:
        pytest.fail(
            f"the image tests need a Docker engine, and none answers: {problem}. "
            "Start Docker (on the CI machine scripts/ci/docker-engine.sh does it)."
        )
    return docker("version", "--format", "{{.Server.Version}}").strip()


@pytest.fixture(scope="session")
def image_refs(docker_engine: str) -> dict[str, str]:
    """Role -> reference of the built image, as landmarks.config names it (registry, tag)."""
    refs = {role: config.image(role) for role in config.IMAGE_ROLES}
    missing = [ref for ref in refs.values() if not image_exists(ref)]
    if missing:
        pytest.fail(
            f"images not built: {', '.join(missing)}. Build them with {BUILD_HINT}; the tag "
            f"is {config.image_tag()!r} (landmarks.config: <version>-<git sha>[-dirty])."
        )
    return refs


@pytest.fixture(scope="session")
def python_base_image(docker_engine: str) -> str:
    """The Python base the slim images were built on: the stand-in with BASE_IMAGES=standin."""
    if os.environ.get("BASE_IMAGES", "official") == "standin":
        proc = subprocess.run(
            [str(REPO / "scripts" / "images" / "standin-bases.sh"), "--refs"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        refs = dict(line.split("=", 1) for line in proc.stdout.split())
        ref = refs["PYTHON_IMAGE"]
    else:
        ref = parse().global_args["PYTHON_IMAGE"]
    if not image_exists(ref):
        pytest.fail(f"the Python base {ref} is not on this engine: build with {BUILD_HINT}")
    return ref


@pytest.fixture
def run_in_image(image_refs: dict[str, str]) -> Iterator[ContainerRunner]:
    """Runs containers of the role images, hardened as the chart runs them.

    `run_in_image.run(role, *args, volumes=..., env=..., network=..., timeout=...)` runs one
    to its end and returns a Result (returncode, stdout, stderr); `.start(...)` starts one in
    the background and returns a Container (`wait`, `logs`, `ip_address`). Defaults:
    --read-only, --tmpfs /tmp, --cap-drop=ALL, no-new-privileges, --network=none, the
    image's own user (uid 1000). Every container started is removed by id afterwards.
    """
    runner = ContainerRunner(image_refs)
    try:
        yield runner
    finally:
        runner.cleanup()
