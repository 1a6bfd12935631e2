"""The pipeline under KFP's local runner: real subprocess tasks, no mocks."""

import json
from pathlib import Path
from typing import NamedTuple

import pytest
from kfp import dsl, local
from kfp.dsl import Dataset, Metrics

from components.ingest import ingest
from components.split import split
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
    assert (Path(outputs["images"].path) / "manifest.csv").exists()

    out = Path(outputs["splits"].path)
    label_map = (out / "label_map.csv").read_text().splitlines()
    assert label_map[0] == "class_index,landmark_id,name" and len(label_map) == 4
    for name in ("train", "validation", "test"):
        assert len(list((out / name).iterdir())) == 3
    assert outputs["split_stats"].metadata["classes"] == 3.0


@pytest.mark.slow
def test_whole_pipeline_trains_and_evaluates_every_stage_locally(tmp_path: Path) -> None:
    outputs = run_demo(
        tmp_path,
        classes=3,
        images_per_class=10,
        seed=5,
        workers=2,
        profile="tiny",
        weights="none",
    )
    summary = json.loads((Path(outputs["evaluation"]) / "summary.json").read_text())
    assert set(summary["models"]) == {
        "stage1-lenet5",
        "stage2-vgg16",
        "stage2-resnet50",
        "stage3-resnet50-aug",
    }
    for scores in summary["models"].values():
        assert {"top1", "top5", "gap"} <= set(scores)
        assert 0.0 <= scores["gap"] <= scores["top5"] <= 1.0
    assert summary["best_model"] in summary["models"]
    assert (Path(outputs["evaluation"]) / "report.html").stat().st_size > 10_000
    for stage in ("stage1", "stage2_vgg16", "stage2_resnet50", "stage3"):
        model_dir = Path(outputs[stage])
        assert (model_dir / "model.keras").exists(), stage
        assert json.loads((model_dir / "history.json").read_text()), stage
