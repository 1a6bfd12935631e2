"""Every task of the compiled pipeline, run in the image its YAML names, on tiny data.

Outside KFP: `tests.images.executor` turns the compiled YAML into each task's container
(image, command, args, env) with a real executor input whose artifacts live in a
directory bind-mounted into the container; each task's outputs (files, and the metrics
KFP keeps in the executor output) are then checked, and one task's output feeds the next.
The containers run as the chart runs pods (uid 1000, read-only root, /tmp scratch, no
capabilities) and with no network at all: ingest serves the embedded dataset to itself on
127.0.0.1 inside its container, as it does in a pod.

The training steps launch TFJobs. In cluster mode (the compiled default) the step's own
image builds the job and asks the Kubernetes API for it; here, with no cluster, the run
must get exactly that far. The job's replicas run `python -m landmarks.train` in the
trainer image the YAML bakes in (LANDMARKS_TRAINER_VARIANT=cpu, as on kind): that entry
point trains the model evaluate then reads. (Multi-worker replicas across containers:
test_multiworker_containers.py.)
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from landmarks import artifacts, config
from landmarks.tfjob.spec import find_container, training_job
from landmarks.train import HISTORY_FILE, MODEL_FILE
from tests.images.containers import ContainerRunner, Result
from tests.images.executor import (
    Artifact,
    CompiledPipeline,
    ExecutorCall,
    Workspace,
    compile_to,
    run_with_local_python,
)

MOUNT = "/kfp"
# The embedded dataset, shrunk: 3 landmarks of 12 valid images each (plus the broken and
# duplicate rows the generator always adds).
TINY_DATA = {"embedded_classes": 3, "embedded_images_per_class": 12}
TASK_TIMEOUT_S = 300
MODEL_INPUTS = ("stage1", "stage2_vgg16", "stage2_resnet50", "stage3")
SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> CompiledPipeline:
    path = compile_to(
        tmp_path_factory.mktemp("compiled") / "pipeline.yaml",
        env={
            "LANDMARKS_TRAINER_VARIANT": "cpu",
            # This session's references, even if a commit lands between build and test.
            "LANDMARKS_REGISTRY": config.REGISTRY,
            "LANDMARKS_IMAGE_TAG": config.image_tag(),
        },
    )
    return CompiledPipeline(path)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    host = tmp_path_factory.mktemp("kfp-root")
    host.chmod(0o777)  # the tasks run as uid 1000
    return Workspace(host, MOUNT)


@pytest.fixture(scope="module")
def module_runner(image_refs: dict[str, str]) -> Iterator[ContainerRunner]:
    runner = ContainerRunner(image_refs)
    yield runner
    runner.cleanup()


def _role(image_refs: dict[str, str], image: str) -> str:
    roles = {ref: role for role, ref in image_refs.items()}
    assert image in roles, f"the pipeline names {image}, which is none of the built images"
    return roles[image]


def _run_task(
    runner: ContainerRunner, image_refs: dict[str, str], call: ExecutorCall, workspace: Workspace
) -> Result:
    """The task's container as the pod would run it: its command, args and env."""
    started = time.monotonic()
    result = runner.run(
        _role(image_refs, call.image),
        *call.argv[1:],
        entrypoint=call.argv[0],
        volumes={str(workspace.host): workspace.mount},
        env=call.env,
        network="none",
        timeout=TASK_TIMEOUT_S,
    )
    SECONDS[call.task] = time.monotonic() - started
    print(f"{call.task} in {call.image}: {SECONDS[call.task]:.1f}s, exit {result.returncode}")
    return result


@pytest.fixture(scope="module")
def ingested(
    compiled: CompiledPipeline,
    workspace: Workspace,
    module_runner: ContainerRunner,
    image_refs: dict[str, str],
) -> ExecutorCall:
    call = compiled.call("ingest", workspace, pipeline_args=TINY_DATA)
    _run_task(module_runner, image_refs, call, workspace).check()
    return call


@pytest.fixture(scope="module")
def split_call(
    compiled: CompiledPipeline,
    workspace: Workspace,
    module_runner: ContainerRunner,
    image_refs: dict[str, str],
    ingested: ExecutorCall,
) -> ExecutorCall:
    images = ingested.result().artifact("images", "system.Dataset")
    call = compiled.call("split", workspace, inputs={"images": images})
    _run_task(module_runner, image_refs, call, workspace).check()
    return call


@pytest.fixture(scope="module")
def trained_model(
    compiled: CompiledPipeline,
    workspace: Workspace,
    module_runner: ContainerRunner,
    image_refs: dict[str, str],
    split_call: ExecutorCall,
) -> Artifact:
    """The stage 1 TFJob's replica, run in the trainer image: one worker (no TF_CONFIG)."""
    task = compiled.task_shown_as("train-stage1")
    splits = split_call.output_artifact("splits")
    model_uri = workspace.uri(task, "model")
    manifest = training_job(
        "stage1-in-image",
        stage="stage1",
        data=splits.uri,
        out=model_uri,
        profile="tiny",
        workers=1,
        image=compiled.pipeline_default("trainer_image"),
    ).to_manifest()
    container = find_container(manifest["spec"]["tfReplicaSpecs"]["Worker"], "Worker")
    started = time.monotonic()
    result = module_runner.run(
        _role(image_refs, container["image"]),
        *container["command"][1:],
        *container["args"],
        entrypoint=container["command"][0],
        volumes={str(workspace.host): workspace.mount},
        env={e["name"]: e["value"] for e in container["env"]},
        network="none",
        timeout=TASK_TIMEOUT_S,
    )
    SECONDS["tfjob-replica"] = time.monotonic() - started
    print(f"python -m landmarks.train in {container['image']}: {SECONDS['tfjob-replica']:.1f}s")
    result.check()
    return Artifact("model", "system.Model", model_uri)


@pytest.mark.images
def test_every_task_names_one_of_the_built_images(
    compiled: CompiledPipeline, image_refs: dict[str, str]
) -> None:
    for task in compiled.tasks:
        _role(image_refs, compiled.image(task))
    assert compiled.pipeline_default("trainer_image") == image_refs["trainer-cpu"]


@pytest.mark.images
def test_ingest_runs_in_its_image_on_the_embedded_dataset(
    ingested: ExecutorCall, workspace: Workspace
) -> None:
    stats = ingested.result().metadata("stats")
    images = ingested.output_path("images")
    with (images / artifacts.INGEST_MANIFEST).open() as handle:
        rows = list(csv.DictReader(handle))
    ok = [row for row in rows if row["status"] == "ok"]
    assert stats["ok"] == len(ok) >= 3 * TINY_DATA["embedded_images_per_class"]
    assert stats["rows"] == len(rows)
    assert stats["failed"] >= 1, "the embedded dataset's broken rows were not seen as such"
    for row in ok:
        assert (images / row["path"]).is_file(), row
    assert (images / artifacts.INGEST_LABELS).is_file() and (
        images / artifacts.INGEST_SUMMARY
    ).is_file()


@pytest.mark.images
def test_split_runs_in_its_image(split_call: ExecutorCall, ingested: ExecutorCall) -> None:
    stats = split_call.result().metadata("stats")
    assert stats["classes"] == TINY_DATA["embedded_classes"]
    assert stats["input_images"] == ingested.result().metadata("stats")["ok"]
    counted = stats["train_images"] + stats["validation_images"] + stats["test_images"]
    assert counted == stats["input_images"]
    splits = split_call.output_path("splits")
    for subset in ("train", "validation", "test"):
        classes = [p for p in (splits / subset).iterdir() if p.is_dir()]
        assert len(classes) == TINY_DATA["embedded_classes"], subset
    assert (splits / artifacts.LABEL_MAP).is_file() and (
        splits / artifacts.SPLIT_MANIFEST
    ).is_file()


@pytest.mark.images
@pytest.mark.parametrize(
    ("shown_as", "stage"),
    [
        ("train-stage1", "stage1"),
        ("train-stage2-vgg16", "stage2-vgg16"),
        ("train-stage2-resnet50", "stage2-resnet50"),
        ("train-stage3", "stage3"),
    ],
)
def test_training_step_in_its_image_builds_its_tfjob_and_asks_the_cluster_for_it(
    compiled: CompiledPipeline,
    workspace: Workspace,
    module_runner: ContainerRunner,
    image_refs: dict[str, str],
    split_call: ExecutorCall,
    shown_as: str,
    stage: str,
) -> None:
    task = compiled.task_shown_as(shown_as)
    training = {
        t
        for t in compiled.tasks
        if "model" in compiled.component(t)["outputDefinitions"]["artifacts"]
    }
    assert task in training and len(training) == 4
    call = compiled.call(
        task,
        workspace,
        inputs={"splits": split_call.output_artifact("splits")},
        pipeline_args={"profile": "tiny"},
    )
    assert call.executor_input["inputs"]["parameterValues"]["executor"] == "cluster"
    result = _run_task(module_runner, image_refs, call, workspace)
    output = result.stdout + result.stderr
    # The manifest was built and validated (landmarks.pipeline_steps.training, landmarks.tfjob), the
    # Kubernetes client imported, and only then was there no cluster to send it to.
    assert result.returncode != 0
    assert f"training {stage} with 2 worker(s) on the cluster executor" in output, output[-3000:]
    assert "no Kubernetes credentials" in output, output[-3000:]
    assert "ModuleNotFoundError" not in output and "ImportError" not in output


@pytest.mark.images
def test_the_tfjob_replica_entry_point_trains_in_the_trainer_image(
    trained_model: Artifact, workspace: Workspace
) -> None:
    model = workspace.host_path(trained_model.uri)
    history = json.loads((model / HISTORY_FILE).read_text())
    assert [e["epoch"] for e in history] == [1, 2]  # the tiny profile's epochs
    assert (model / MODEL_FILE).stat().st_size > 0
    assert (model / artifacts.CONFIG_FILE).is_file() and (model / artifacts.LABEL_MAP).is_file()


@pytest.mark.images
def test_evaluate_runs_in_its_image_on_the_trained_model(
    compiled: CompiledPipeline,
    workspace: Workspace,
    module_runner: ContainerRunner,
    image_refs: dict[str, str],
    split_call: ExecutorCall,
    trained_model: Artifact,
) -> None:
    # One trained LeNet stands in for all four models: what is under test is that the
    # evaluate image loads Keras models and writes the report, not the stages' quality.
    inputs = {name: trained_model for name in MODEL_INPUTS}
    inputs["splits"] = split_call.output_artifact("splits")
    call = compiled.call("evaluate", workspace, inputs=inputs, overrides={"batch_size": 8})
    assert _role(image_refs, call.image) == "trainer-cpu"
    _run_task(module_runner, image_refs, call, workspace).check()
    output = call.result()
    names = ("stage1-lenet5", "stage2-vgg16", "stage2-resnet50", "stage3-resnet50-aug")
    assert output.parameter() in names
    scores = output.metadata("scores")
    for name in names:
        assert 0.0 <= scores[f"{name}.top1"] <= scores[f"{name}.top5"] <= 1.0
        assert scores[f"{name}.n_test"] > 0
    matrix = output.metadata("confusion")["confusionMatrix"]
    assert len(matrix["rows"]) == len(matrix["annotationSpecs"]) == TINY_DATA["embedded_classes"]
    assert call.output_path("report").read_text().lstrip().lower().startswith("<!doctype html")
    markdown = call.output_path("report_markdown").read_text()
    # The UI shows this copy away from the evaluation folder: its pictures are inside it.
    assert "](data:image/png;base64," in markdown and ".png)" not in markdown
    evaluation = call.output_path("evaluation")
    assert json.loads((evaluation / artifacts.EVALUATION_SUMMARY_FILE).read_text())
    print("seconds per task:", json.dumps({k: round(v, 1) for k, v in SECONDS.items()}))


def test_the_harness_runs_the_tasks_command_lines_with_a_local_python(tmp_path: Path) -> None:
    """Without Docker: ingest and split through the very same command lines, in this venv."""
    python_bin = Path(sys.executable)
    pipeline = CompiledPipeline(compile_to(tmp_path / "pipeline.yaml"))
    workspace = Workspace(tmp_path / "root", str(tmp_path / "root"))
    workspace.host.mkdir()
    ingest = pipeline.call("ingest", workspace, pipeline_args=TINY_DATA)
    proc = run_with_local_python(ingest, python_bin, TASK_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    images = ingest.result().artifact("images", "system.Dataset")
    split = pipeline.call("split", workspace, inputs={"images": images})
    proc = run_with_local_python(split, python_bin, TASK_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert split.result().metadata("stats")["classes"] == TINY_DATA["embedded_classes"]
    with pytest.raises(ValueError, match=r"split takes input artifacts \['images'\], got \[\]"):
        pipeline.call("split", workspace)
    # What the driver resolves for a training step: placeholders, integers, its TaskConfig.
    splits = split.output_artifact("splits")
    stage1 = pipeline.task_shown_as("train-stage1")
    values = pipeline.call(stage1, workspace, inputs={"splits": splits}, run_id="r-42")
    parameters = values.executor_input["inputs"]["parameterValues"]
    assert parameters["run_id"] == "r-42" and parameters["kfp_task"] == stage1
    assert parameters["stage"] == "stage1"
    assert parameters["workers"] == 2 and isinstance(parameters["workers"], int)
    assert isinstance(parameters["task_config"], dict)
