"""Training steps get KFP's store credentials: they hand minio:// URIs to TFJobs and read back."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.compile import compile_pipeline


def test_training_steps_and_only_they_take_the_minio_secret_as_env(tmp_path: Path) -> None:
    path = compile_pipeline(tmp_path / "pipeline.yaml")
    _, platform = list(yaml.safe_load_all(path.read_text()))
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_secret = {
        name: ex["secretAsEnv"] for name, ex in executors.items() if ex.get("secretAsEnv")
    }
    assert sorted(with_secret) == [
        "exec-train-stage1",
        "exec-train-stage2",
        "exec-train-stage2-2",
        "exec-train-stage3",
    ]
    for secrets in with_secret.values():
        assert len(secrets) == 1
        secret = secrets[0]
        assert secret["secretName"] == "mlpipeline-minio-artifact"
        # A deployment without KFP's store (gs:// pipeline root) must still start the pod.
        assert secret["optional"] is True
        assert {e["secretKey"]: e["envVar"] for e in secret["keyToEnv"]} == {
            "accesskey": "AWS_ACCESS_KEY_ID",
            "secretkey": "AWS_SECRET_ACCESS_KEY",
        }
