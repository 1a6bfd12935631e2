"""Multi-worker training whose split and model live in KFP's store (minio://, SeaweedFS).

The TFJob built for the pipeline runs under the local executor: two worker processes
with the operator's TF_CONFIG, each reaching the real S3 server through the environment
a pod would have, staging the split from it and (the chief) writing the model there.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from landmarks import storage
from landmarks.artifacts import CONFIG_FILE, HISTORY_FILE, LABEL_MAP, MODEL_FILE
from landmarks.tfjob import LocalTFJob, training_job
from tests.support.s3 import BUILD_TIMEOUT_S, SeaweedFS
from tests.train.conftest import TRAINER_ENV

# The server may be compiled first when this test runs alone (a cold build takes minutes).
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 600)


@pytest.mark.slow
def test_two_workers_read_the_split_from_minio_and_write_the_model_there(
    tiny_split: Path, tmp_path: Path, minio_bucket: str, s3_server: SeaweedFS
) -> None:
    bucket = storage.split_uri(minio_bucket)[1]
    # With versioning on, the per-epoch checkpoints the chief mirrored stay visible as old
    # versions after training removes them.
    s3_server.client().put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    data = storage.join(minio_bucket, "v2/artifacts/split")
    out = storage.join(minio_bucket, "v2/artifacts/model")
    storage.upload_tree(tiny_split, data)

    manifest = training_job(
        "minio-two-workers",
        stage="stage1",
        data=data,
        out=out,
        profile="tiny",
        overrides={"epochs": 2},
        workers=2,
    ).to_manifest()
    log = io.StringIO()
    # TMPDIR: each replica stages the split and keeps its work files under this test's folder.
    env = {**TRAINER_ENV, "TMPDIR": str(tmp_path)}
    result = LocalTFJob(manifest, timeout=300, output=log, extra_env=env).run()
    text = log.getvalue()
    assert result.succeeded, text[-3000:]
    assert "[worker-0] " in text and "[worker-1] " in text
    assert text.count(f"staging {data}") == 2  # each replica staged the split itself

    files = set(storage.list_files(out))
    assert {MODEL_FILE, LABEL_MAP, HISTORY_FILE, CONFIG_FILE} <= files
    assert any(f.startswith("logs/train/events.out.tfevents") for f in files)
    assert not any(f.startswith(".checkpoint/") for f in files)  # cleared once saved
    history = json.loads(storage.read_text(storage.join(out, HISTORY_FILE)))
    assert [e["epoch"] for e in history] == [1, 2]
    label_map = storage.read_bytes(storage.join(out, LABEL_MAP))
    assert label_map == (tiny_split / LABEL_MAP).read_bytes()

    versions = s3_server.client().list_object_versions(
        Bucket=bucket, Prefix="v2/artifacts/model/.checkpoint/"
    )
    mirrored = {v["Key"].rsplit("/", 1)[-1] for v in versions.get("Versions", [])}
    assert HISTORY_FILE in mirrored and "checkpoint" in mirrored, mirrored
    assert versions.get("DeleteMarkers"), "the checkpoint was never removed"

    import landmarks.train

    assert landmarks.train.load_model(out).output_shape == (None, 3)
