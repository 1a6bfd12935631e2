"""The built images, run: non-root, read-only root, consistent dependencies, no secrets.

Needs a Docker engine and the images of this checkout's tag: `make test-images`.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import uuid
from pathlib import Path

import pytest

from landmarks import config
from tests.images.containers import ContainerRunner, docker
from tests.images.layer_scan import Finding, scan_saved

pytestmark = pytest.mark.images

TRAINERS = ("trainer", "trainer-cpu")
# What each image must be able to import on a read-only root: the package everywhere, the
# trainers' TensorFlow with tf-keras as its Keras (TF_USE_LEGACY_KERAS=1).
IMPORT_CHECK = "import landmarks, landmarks.cli, landmarks.config; print(landmarks.__file__)"
TRAINER_CHECK = (
    "import tensorflow as tf, tf_keras, landmarks.train; "
    "assert tf.__version__ == {version!r}, tf.__version__; "
    "assert tf.keras.__name__.startswith('tf_keras'), tf.keras.__name__; "
    "print(tf.__version__, tf.keras.__name__)"
)


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_image_config_user_is_numeric_uid_1000(image_refs: dict[str, str], role: str) -> None:
    # Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
    user = docker("image", "inspect", "--format", "{{.Config.User}}", image_refs[role]).strip()
    assert user == "1000:1000"


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_runs_as_uid_1000_with_home_on_tmp(run_in_image: ContainerRunner, role: str) -> None:
    result = run_in_image.run(role, "sh", "-c", 'echo "$(id -u) $(id -g) $HOME"').check()
    assert result.stdout.split() == ["1000", "1000", "/tmp"]


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_works_on_a_read_only_root_with_tmp_as_scratch(
    run_in_image: ContainerRunner, role: str
) -> None:
    check = IMPORT_CHECK
    if role in TRAINERS:
        check += "; " + TRAINER_CHECK.format(version=config.TENSORFLOW_VERSION)
    # The root really is read-only (the write to /opt fails) and /tmp takes writes.
    script = (
        f'python -c "{check}" && touch /tmp/scratch && '
        "if touch /opt/not-writable 2>/dev/null; then echo 'root is writable'; exit 3; fi"
    )
    result = run_in_image.run(role, "sh", "-c", script, timeout=300).check()
    assert "/landmarks/__init__.py" in result.stdout
    if role in TRAINERS:
        assert f"{config.TENSORFLOW_VERSION} tf_keras" in result.stdout


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_default_command_starts(run_in_image: ContainerRunner, role: str) -> None:
    # No arguments: the image's own CMD (landmarks --help, or the trainer's --help).
    result = run_in_image.run(role, timeout=300).check()
    assert "usage:" in result.stdout.lower()


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_installed_packages_are_consistent(run_in_image: ContainerRunner, role: str) -> None:
    result = run_in_image.run(role, "python", "-m", "pip", "check", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No broken requirements found" in result.stdout


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_image_carries_the_references_of_its_build(image_refs: dict[str, str], role: str) -> None:
    inspect = docker("image", "inspect", "--format", "{{json .Config.Env}}", image_refs[role])
    env = json.loads(inspect)
    values = dict(item.split("=", 1) for item in env)
    assert values["LANDMARKS_IMAGE_TAG"] == config.image_tag()
    assert values["LANDMARKS_REGISTRY"] == config.REGISTRY


@pytest.fixture(scope="module")
def layer_findings(image_refs: dict[str, str]) -> dict[str, list[Finding]]:
    # One `docker save` for all images: the layers they share are scanned once.
    return scan_saved(image_refs.values())


@pytest.mark.parametrize("role", config.IMAGE_ROLES)
def test_no_credentials_or_keys_in_any_layer(
    layer_findings: dict[str, list[Finding]], image_refs: dict[str, str], role: str
) -> None:
    findings = layer_findings[image_refs[role]]
    assert not findings, "\n".join(map(str, findings))


# Built by concatenation, so this source file itself holds no key header for scanners to flag.
PEM = "-----" + "BEGIN {kind}PRIVATE KEY" + "-----\n{body}\n-----" + "END {kind}PRIVATE KEY-----\n"
PLANTED_DOCKERFILE = """\
FROM {base}
COPY deleted.pem /opt/app/deleted.pem
RUN rm /opt/app/deleted.pem
COPY tls.key /opt/app/certs/tls.key
COPY sa.json /srv/keys/landmarks-sa.json
COPY id_rsa /root/.ssh/id_rsa
COPY dotenv /app/.env
COPY aws /root/.aws/credentials
"""


def test_the_scan_finds_planted_secrets_even_in_deleted_files(python_base_image: str) -> None:
    # Key-shaped (base64 lines between the markers) but random: no real key is generated
    # for an image that could outlive a failed test.
    raw = base64.b64encode(os.urandom(600)).decode()
    body = "\n".join(raw[i : i + 64] for i in range(0, len(raw), 64))
    files = {
        "deleted.pem": PEM.format(kind="", body=body),
        "tls.key": PEM.format(kind="EC ", body=body),
        "sa.json": json.dumps({"type": "service_account", "project_id": "p", "client_id": "1"}),
        "id_rsa": "not a key, but the name alone is a finding\n",
        "dotenv": "LANDMARKS_BUCKET=gs://somewhere\n",
        "aws": "[default]\n",
    }
    ref = f"landmarks-test/planted-secrets:{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as context:
        for name, text in files.items():
            Path(context, name).write_text(text)
        Path(context, "Dockerfile").write_text(PLANTED_DOCKERFILE.format(base=python_base_image))
        docker("build", "--quiet", "--tag", ref, context, timeout=300)
    try:
        findings = scan_saved([ref])[ref]
    finally:
        docker("image", "rm", "--force", ref, check=False)
    found = {(f.path, f.reason) for f in findings}
    assert found == {
        ("/opt/app/deleted.pem", "a PEM private key"),
        ("/opt/app/certs/tls.key", "a PEM private key"),
        ("/srv/keys/landmarks-sa.json", "a GCP service-account key"),
        ("/root/.ssh/id_rsa", "a credentials file by its name"),
        ("/app/.env", "a credentials file by its name"),
        ("/root/.aws/credentials", "a credentials file by its name"),
    }
