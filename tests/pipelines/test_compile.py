"""The compiled pipeline's structure: what the KFP backend will actually run."""

from pathlib import Path

import pytest
import yaml

from landmarks.config import COMPONENT_IMAGE
from pipelines.compile import compile_pipeline


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")
    documents = [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc]
    return documents[0]


def _tasks(compiled: dict) -> dict:
    return compiled["root"]["dag"]["tasks"]


def test_pipeline_has_the_data_stages_in_order(compiled: dict) -> None:
    tasks = _tasks(compiled)
    assert {"ingest", "split"} <= set(tasks)
    assert tasks["split"]["dependentTasks"] == ["ingest"]
    split_input = tasks["split"]["inputs"]["artifacts"]["images"]["taskOutputArtifact"]
    assert split_input == {"outputArtifactKey": "images", "producerTask": "ingest"}


def test_every_executor_runs_the_component_image_without_pip(compiled: dict) -> None:
    executors = compiled["deploymentSpec"]["executors"]
    assert executors
    for name, executor in executors.items():
        container = executor["container"]
        assert container["image"] == COMPONENT_IMAGE, name
        script = " ".join(container["command"])
        assert "pip install" not in script, f"{name} would pip install at start-up"


def test_tasks_stream_logs_unbuffered(compiled: dict) -> None:
    for name in ("ingest", "split"):
        env = compiled["deploymentSpec"]["executors"][f"exec-{name}"]["container"]["env"]
        assert {"name": "PYTHONUNBUFFERED", "value": "1"} in env


def test_metadata_is_the_only_required_parameter(compiled: dict) -> None:
    params = compiled["root"]["inputDefinitions"]["parameters"]
    required = {name for name, spec in params.items() if not spec.get("isOptional")}
    assert required == {"metadata"}
