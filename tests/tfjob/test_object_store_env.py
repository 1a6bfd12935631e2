"""What a TFJob's replicas get to reach minio:// and s3:// on a cluster."""

from __future__ import annotations

from typing import Any

from landmarks.tfjob import training_job
from landmarks.tfjob.spec import find_container, with_object_store_env


def _manifest(data: str, out: str, **spec: Any) -> dict[str, Any]:
    return training_job("job", stage="stage1", data=data, out=out, **spec).to_manifest()


def _env(manifest: dict[str, Any], replica_type: str = "Worker") -> dict[str, Any]:
    container = find_container(manifest["spec"]["tfReplicaSpecs"][replica_type], replica_type)
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_minio_replicas_take_kfp_credentials_from_its_secret() -> None:
    manifest = _manifest("minio://mlpipeline/split", "minio://mlpipeline/model", chief=True)
    out = with_object_store_env(manifest, ["minio://mlpipeline/split"], environ={})
    for replica_type in ("Chief", "Worker"):
        env = _env(out, replica_type)
        assert env["AWS_ACCESS_KEY_ID"] == {
            "secretKeyRef": {"name": "mlpipeline-minio-artifact", "key": "accesskey"}
        }
        assert env["AWS_SECRET_ACCESS_KEY"] == {
            "secretKeyRef": {"name": "mlpipeline-minio-artifact", "key": "secretkey"}
        }
        # Without an endpoint of its own the launcher lets the replicas use KFP's default.
        assert "LANDMARKS_MINIO_ENDPOINT" not in env
        assert env["TF_USE_LEGACY_KERAS"] == "1"  # the trainer's own env is kept
    assert "AWS_ACCESS_KEY_ID" not in _env(manifest)  # the input is not changed


def test_minio_endpoint_and_region_follow_the_launcher() -> None:
    manifest = _manifest("/local/split", "minio://b/model")
    environ = {
        "LANDMARKS_MINIO_ENDPOINT": "http://store.kubeflow:9000",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_S3": "http://elsewhere:1",  # s3:// only
    }
    env = _env(with_object_store_env(manifest, [None, "minio://b/model", ""], environ=environ))
    assert env["LANDMARKS_MINIO_ENDPOINT"] == "http://store.kubeflow:9000"
    assert env["AWS_REGION"] == "eu-west-1"
    assert "AWS_ENDPOINT_URL_S3" not in env


def test_s3_gets_endpoint_and_region_but_no_secret() -> None:
    manifest = _manifest("s3://data/split", "s3://models/m")
    environ = {"AWS_ENDPOINT_URL_S3": "http://s3.internal:9000", "AWS_REGION": "us-east-2"}
    env = _env(with_object_store_env(manifest, ["s3://data/split"], environ=environ))
    assert env["AWS_ENDPOINT_URL_S3"] == "http://s3.internal:9000"
    assert env["AWS_REGION"] == "us-east-2"
    assert "AWS_ACCESS_KEY_ID" not in env  # IRSA or the chart's training env


def test_gcs_and_local_jobs_are_left_alone() -> None:
    manifest = _manifest("gs://b/split", "/models/m")
    environ = {"LANDMARKS_MINIO_ENDPOINT": "http://x:1", "AWS_REGION": "r"}
    assert with_object_store_env(manifest, ["gs://b/split", "/models/m"], environ) == manifest


def test_env_the_job_already_sets_wins() -> None:
    manifest = _manifest("minio://b/s", "minio://b/m", env={"AWS_ACCESS_KEY_ID": "mine"})
    env = _env(with_object_store_env(manifest, ["minio://b/s"], environ={}))
    assert env["AWS_ACCESS_KEY_ID"] == "mine"
    assert "secretKeyRef" in env["AWS_SECRET_ACCESS_KEY"]
