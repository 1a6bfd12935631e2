"""Training steps get KFP's store credentials: they hand minio:// URIs to TFJobs and read back."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipelines.compile import compile_pipeline


def test_training_steps_and_only_they_take_the_minio_secret_as_env(tmp_path: Path) -> None:
    path = compile_pipeline(tmp_path / "pipeline.yaml")
    pipeline, platform = list(yaml.safe_load_all(path.read_text()))
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_secret = {
        name: ex["secretAsEnv"] for name, ex in executors.items() if ex.get("secretAsEnv")
    }
    # The executors of the tasks the UI shows as train-stage*, found through the spec.
    tasks = pipeline["root"]["dag"]["tasks"].values()
    training = {
        pipeline["components"][task["componentRef"]["name"]]["executorLabel"]
        for task in tasks
        if task["taskInfo"]["name"].startswith("train-stage")
    }
    assert len(training) == 4
    assert set(with_secret) == training
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
