"""The pipeline under KFP's local runner: real subprocess tasks, no mocks."""

import json
import re
from pathlib import Path
from typing import NamedTuple

import pytest
from kfp import dsl, local
from kfp.dsl import Dataset, Metrics

from components.ingest import ingest
from components.split import split
from landmarks import artifacts
from pipelines.run_local import run_demo


@pytest.fixture
def local_runner(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    return root


class DataOutputs(NamedTuple):
    images: Dataset
    ingest_stats: Metrics
    splits: Dataset
    split_stats: Metrics


@dsl.pipeline
def data_stages(seed: int) -> DataOutputs:
    ingested = ingest(embedded_classes=3, embedded_images_per_class=8, seed=seed)
    splitted = split(images=ingested.outputs["images"], seed=seed)
    return DataOutputs(
        images=ingested.outputs["images"],
        ingest_stats=ingested.outputs["stats"],
        splits=splitted.outputs["splits"],
        split_stats=splitted.outputs["stats"],
    )


def test_ingest_and_split_run_as_kfp_tasks_on_the_embedded_dataset(local_runner: Path) -> None:
    outputs = data_stages(seed=3).outputs
    # 3 x 8 valid images, plus the planted defects: two dead URLs, a truncated JPEG and a
    # duplicate image.
    counts = outputs["ingest_stats"].metadata
    assert counts == {"rows": 28.0, "ok": 24.0, "failed": 3.0, "duplicate": 1.0}
    assert (Path(outputs["images"].path) / artifacts.INGEST_MANIFEST).exists()

    out = Path(outputs["splits"].path)
    label_map = (out / artifacts.LABEL_MAP).read_text().splitlines()
    assert label_map[0] == "class_index,landmark_id,name" and len(label_map) == 4
    for name in ("train", "validation", "test"):
        assert len(list((out / name).iterdir())) == 3
    assert outputs["split_stats"].metadata["classes"] == 3.0


# The launcher's line before each job, and a replica's end-of-epoch line as the local
# executor relays it ("[worker-1] ... worker-1 epoch 2/2 loss=..."; kfp.local indents it).
JOB_START = re.compile(r"training (\S+) with (\d+) worker\(s\)")
EPOCH_END = re.compile(r"^\s*\[(worker-\d+)\] .*\b\1 epoch (\d+)/\d+ ", re.MULTILINE)
STAGE_OUTPUTS = {
    "stage1": "stage1",
    "stage2-vgg16": "stage2_vgg16",
    "stage2-resnet50": "stage2_resnet50",
    "stage3": "stage3",
}


def _epochs_by_worker(output: str) -> dict[str, dict[str, list[int]]]:
    """Per training job: each replica's completed epochs, in the order it logged them."""
    starts = list(JOB_START.finditer(output))
    jobs: dict[str, dict[str, list[int]]] = {}
    for start, end in zip(starts, [*starts[1:], None], strict=True):
        assert start.group(2) == "2", start.group(0)
        chunk = output[start.end() : end.start() if end else len(output)]
        epochs: dict[str, list[int]] = {}
        for match in EPOCH_END.finditer(chunk):
            epochs.setdefault(match.group(1), []).append(int(match.group(2)))
        jobs[start.group(1)] = epochs
    return jobs


@pytest.mark.slow
def test_whole_pipeline_trains_and_evaluates_every_stage_locally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = run_demo(
        tmp_path,
        classes=3,
        images_per_class=10,
        seed=5,
        workers=2,
        profile="tiny",
        weights="none",
    )
    summary = json.loads(
        (Path(outputs["evaluation"]) / artifacts.EVALUATION_SUMMARY_FILE).read_text()
    )
    assert set(summary["models"]) == {
        "stage1-lenet5",
        "stage2-vgg16",
        "stage2-resnet50",
        "stage3-resnet50-aug",
    }
    for scores in summary["models"].values():
        assert {"top1", "top5", "gap"} <= set(scores)
    assert summary["best_model"] in summary["models"]
    assert (Path(outputs["evaluation"]) / "report.html").stat().st_size > 10_000
    # Each stage was one job of two workers that trained together: under
    # MultiWorkerMirroredStrategy an epoch ends on a worker only once its peer has run the
    # same steps (every step all-reduces), so both replicas log every epoch the chief's
    # history records. A worker training alone, or dropping out, leaves a gap here.
    jobs = _epochs_by_worker(capsys.readouterr().out)
    assert set(jobs) == set(STAGE_OUTPUTS), jobs
    for stage, output in STAGE_OUTPUTS.items():
        model_dir = Path(outputs[output])
        assert (model_dir / artifacts.MODEL_FILE).exists(), stage
        history = json.loads((model_dir / artifacts.HISTORY_FILE).read_text())
        epochs = [entry["epoch"] for entry in history]
        assert epochs, stage
        assert jobs[stage] == {"worker-0": epochs, "worker-1": epochs}, (stage, jobs)
