"""The compiled pipeline's structure: what the KFP backend will actually run."""

import ast
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from components.base import COMPONENT_ROLES
from landmarks import config
from landmarks.errors import LandmarksError
from landmarks.tfjob.placement import GPUS_NOT_SET, NODE_SELECTOR_NOT_SET
from pipelines.compile import check_no_local_paths, compile_pipeline

REPO = Path(__file__).resolve().parents[2]
# What the KFP UI shows for each training task (taskInfo.name), and the stage it trains.
TRAINING_STAGES = {
    "train-stage1": "stage1",
    "train-stage2-vgg16": "stage2-vgg16",
    "train-stage2-resnet50": "stage2-resnet50",
    "train-stage3": "stage3",
}
PLACEMENT_PARAMETERS = {"gpus_per_worker": GPUS_NOT_SET, "node_selector": NODE_SELECTOR_NOT_SET}


@pytest.fixture(scope="module")
def compiled_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_pipeline(tmp_path_factory.mktemp("compiled") / "pipeline.yaml")


@pytest.fixture(scope="module")
def compiled(compiled_path: Path) -> dict:
    documents = [doc for doc in yaml.safe_load_all(compiled_path.read_text()) if doc]
    return documents[0]


def _platform(path: Path) -> dict:
    """The kfp-kubernetes settings per executor (the compiled file's second document, if any)."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    if len(documents) < 2:
        return {}
    return documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.fixture(scope="module")
def platform(compiled_path: Path) -> dict:
    return _platform(compiled_path)


def _tasks(compiled: dict) -> dict:
    return compiled["root"]["dag"]["tasks"]


def _training_tasks(compiled: dict) -> dict[str, str]:
    """Task keys of the training tasks, by the name the KFP UI shows for them."""
    return {
        task["taskInfo"]["name"]: key
        for key, task in _tasks(compiled).items()
        if "stage" in task["inputs"].get("parameters", {})
    }


def test_one_train_component_shows_as_one_named_task_per_stage(compiled: dict) -> None:
    tasks = _tasks(compiled)
    training = _training_tasks(compiled)
    assert set(training) == set(TRAINING_STAGES)
    for shown_as, key in training.items():
        stage = tasks[key]["inputs"]["parameters"]["stage"]["runtimeValue"]["constant"]
        assert stage == TRAINING_STAGES[shown_as], shown_as
    # Every training task runs the same function (KFP copies its spec once per task).
    functions = {
        _function(compiled["deploymentSpec"]["executors"][_executor(compiled, key)])
        for key in training.values()
    }
    assert functions == {"train"}

    # The seed's order: the smoke run, then both stage 2 models, then stage 3.
    def after(shown_as: str) -> set[str]:
        return set(tasks[training[shown_as]].get("dependentTasks", [])) - {"split"}

    assert after("train-stage1") == set()
    assert after("train-stage2-vgg16") == {training["train-stage1"]}
    assert after("train-stage2-resnet50") == {training["train-stage1"]}
    assert after("train-stage3") == {
        training["train-stage2-vgg16"],
        training["train-stage2-resnet50"],
    }


def _executor(compiled: dict, task: str) -> str:
    return compiled["components"][_tasks(compiled)[task]["componentRef"]["name"]]["executorLabel"]


def test_pipeline_has_the_data_stages_in_order(compiled: dict) -> None:
    tasks = _tasks(compiled)
    assert {"ingest", "split"} <= set(tasks)
    assert tasks["split"]["dependentTasks"] == ["ingest"]
    split_input = tasks["split"]["inputs"]["artifacts"]["images"]["taskOutputArtifact"]
    assert split_input == {"outputArtifactKey": "images", "producerTask": "ingest"}


# The extras of pyproject.toml that each image role installs (images/Dockerfile); running
# every task in its image (tests/images, `make test-images`) proves it for real.
ROLE_EXTRAS = {"component": (), "trainer": ("train",), "trainer-cpu": ("train",)}


def _function(executor: dict) -> str:
    args = executor["container"]["args"]
    return args[args.index("--function_to_execute") + 1]


def _body_imports(executor: dict) -> list[str]:
    """The import statements of the task's function body, the code KFP ships to the pod."""
    source = executor["container"]["command"][-1]
    (function,) = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and node.name == _function(executor)
    ]
    return [
        ast.unparse(node)
        for node in ast.walk(function)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]


def _modules_of_extra(extra: str) -> set[str]:
    """Top-level modules of the distributions an extra adds (tensorflow, tf_keras, ...)."""
    wanted = {
        re.sub(r"[-_.]+", "-", Requirement(text).name).lower()
        for text in metadata.requires("landmarks") or []
        if Requirement(text).marker and Requirement(text).marker.evaluate({"extra": extra})
    }
    return {
        module
        for module, dists in metadata.packages_distributions().items()
        if any(re.sub(r"[-_.]+", "-", d).lower() in wanted for d in dists)
    }


def test_every_executor_runs_its_components_image_without_pip(compiled: dict) -> None:
    executors = compiled["deploymentSpec"]["executors"]
    assert {_function(e) for e in executors.values()} == set(COMPONENT_ROLES)
    for name, executor in executors.items():
        container = executor["container"]
        assert container["image"] == config.image(COMPONENT_ROLES[_function(executor)]), name
        script = " ".join(container["command"])
        assert "pip install" not in script, f"{name} would pip install at start-up"


def test_tasks_that_load_trained_models_run_an_image_with_tensorflow(compiled: dict) -> None:
    # Loading a Keras model needs TensorFlow; the component image does not have it.
    for task in _tasks(compiled).values():
        component = compiled["components"][task["componentRef"]["name"]]
        artifacts = component.get("inputDefinitions", {}).get("artifacts", {})
        executor = compiled["deploymentSpec"]["executors"][component["executorLabel"]]
        role = COMPONENT_ROLES[_function(executor)]
        if any(a["artifactType"]["schemaTitle"] == "system.Model" for a in artifacts.values()):
            assert "train" in ROLE_EXTRAS[role], f"{component['executorLabel']} runs {role}"


def test_each_task_body_imports_only_what_its_image_installs(compiled: dict) -> None:
    """Each function body's imports, in a process where the role's missing extras are absent."""
    missing_by_role = {
        role: sorted(set().union(*(_modules_of_extra(e) for e in ("train",) if e not in extras)))
        for role, extras in ROLE_EXTRAS.items()
    }
    assert "tensorflow" in missing_by_role["component"]
    for name, executor in compiled["deploymentSpec"]["executors"].items():
        blocked = missing_by_role[COMPONENT_ROLES[_function(executor)]]
        program = "\n".join(
            [
                "import importlib.abc, sys",
                "class Absent(importlib.abc.MetaPathFinder):",
                "    def find_spec(self, name, path=None, target=None):",
                f"        if name.split('.')[0] in {blocked!r}:",
                "            raise ModuleNotFoundError(f'not in this image: {name}')",
                "sys.meta_path.insert(0, Absent())",
                *_body_imports(executor),
            ]
        )
        proc = subprocess.run(
            [sys.executable, "-c", program],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"{name}: {proc.stderr[-2000:]}"


def test_tasks_stream_logs_unbuffered(compiled: dict) -> None:
    for name in ("ingest", "split"):
        env = compiled["deploymentSpec"]["executors"][f"exec-{name}"]["container"]["env"]
        assert {"name": "PYTHONUNBUFFERED", "value": "1"} in env


def test_a_run_needs_no_parameter_it_ingests_the_embedded_dataset(compiled: dict) -> None:
    params = compiled["root"]["inputDefinitions"]["parameters"]
    assert [name for name, spec in params.items() if not spec.get("isOptional")] == []
    assert params["metadata"]["defaultValue"] == ""


def _default(compiled: dict, name: str) -> object:
    return compiled["root"]["inputDefinitions"]["parameters"][name]["defaultValue"]


def test_cluster_mode_trains_as_tfjobs_and_local_mode_as_processes(
    compiled: dict, tmp_path: Path
) -> None:
    assert _default(compiled, "executor") == "cluster"
    local = compile_pipeline(tmp_path / "local.yaml", mode="local")
    assert _default(next(yaml.safe_load_all(local.read_text())), "executor") == "local"
    with pytest.raises(LandmarksError, match="unknown mode 'docker'"):
        compile_pipeline(tmp_path / "x.yaml", mode="docker")


def test_training_tasks_run_the_trainer_image_named_after_their_run(compiled: dict) -> None:
    assert _default(compiled, "trainer_image") == config.image(config.trainer_role())
    assert _default(compiled, "training_namespace") == "landmarks-training"
    for name in _training_tasks(compiled).values():
        params = _tasks(compiled)[name]["inputs"]["parameters"]
        assert params["trainer_image"] == {"componentInputParameter": "trainer_image"}
        assert params["namespace"] == {"componentInputParameter": "training_namespace"}
        # The backend fills these in; the launcher names the TFJob after them.
        assert params["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
        assert params["kfp_task"]["runtimeValue"]["constant"] == "{{$.pipeline_task_name}}"


def _assert_nothing_pins_where_training_runs(pipeline: dict, platform: dict) -> None:
    """No GPU, node selector or toleration compiled in: it would override the chart's values."""
    for name in _training_tasks(pipeline).values():
        executor = _executor(pipeline, name)
        container = pipeline["deploymentSpec"]["executors"][executor]["container"]
        assert "resources" not in container, name
        settings = platform.get(executor, {})
        for key in ("nodeSelector", "tolerations", "nodeAffinity", "podAffinity"):
            assert key not in settings, (name, key)


def test_compiled_training_tasks_pin_no_gpu_pool_or_count(compiled: dict, platform: dict) -> None:
    _assert_nothing_pins_where_training_runs(compiled, platform)
    for name in ("ingest", "split", "evaluate"):
        container = compiled["deploymentSpec"]["executors"][f"exec-{name}"]["container"]
        assert "resources" not in container
        assert f"exec-{name}" not in platform


def test_where_training_runs_is_a_run_parameter_unset_by_default(compiled: dict) -> None:
    for parameter, unset in PLACEMENT_PARAMETERS.items():
        assert _default(compiled, parameter) == unset, parameter
    components = compiled["components"]
    for name in _training_tasks(compiled).values():
        task = _tasks(compiled)[name]
        params = task["inputs"]["parameters"]
        component = components[task["componentRef"]["name"]]["inputDefinitions"]["parameters"]
        for parameter, unset in PLACEMENT_PARAMETERS.items():
            # Every training step forwards the run's value to its launcher...
            assert params[parameter] == {"componentInputParameter": parameter}, (name, parameter)
            # ... and the component's own default (a literal in its source) means "unset" too.
            assert component[parameter]["defaultValue"] == unset, (name, parameter)


def test_task_config_still_reaches_the_replicas_not_the_launcher_pod(compiled: dict) -> None:
    # A pipeline built on these components may set GPUs or a pool on a training task with
    # kfp-kubernetes: that goes to the replicas (placement layer 4), not the launcher's pod.
    components = compiled["components"]
    for name in _training_tasks(compiled).values():
        component = components[_tasks(compiled)[name]["componentRef"]["name"]]
        passthroughs = {
            p["field"]: p.get("applyToTask", False) for p in component["taskConfigPassthroughs"]
        }
        for field in ("RESOURCES", "KUBERNETES_NODE_SELECTOR", "KUBERNETES_TOLERATIONS"):
            assert passthroughs[field] is False, (name, field)


def test_training_tasks_are_never_cached(compiled: dict) -> None:
    tasks = _tasks(compiled)
    for name in _training_tasks(compiled).values():
        assert not tasks[name]["cachingOptions"].get("enableCache"), name
    assert tasks["ingest"]["cachingOptions"].get("enableCache") is True


def test_cluster_pipeline_names_no_path_of_this_machine(compiled_path: Path) -> None:
    text = compiled_path.read_text()
    assert str(REPO) not in text and str(Path.home()) not in text
    check_no_local_paths(compiled_path)  # the check compile_pipeline runs in cluster mode


def test_a_local_path_in_a_cluster_pipeline_is_refused(compiled_path: Path, tmp_path: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(compiled_path.read_text()) if doc]
    parameters = documents[0]["root"]["inputDefinitions"]["parameters"]
    parameters["labels"]["defaultValue"] = "/data/labels.csv"
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(yaml.safe_dump_all(documents))
    with pytest.raises(LandmarksError, match=r"parameter labels='/data/labels\.csv'"):
        check_no_local_paths(leaky)


def test_cpu_trainer_variant_compiles_without_gpus(tmp_path: Path) -> None:
    # The trainer variant is read when the pipeline module is imported: a fresh process.
    output = tmp_path / "cpu.yaml"
    env = {**os.environ, "LANDMARKS_TRAINER_VARIANT": "cpu"}
    subprocess.run(
        [sys.executable, "-m", "pipelines.compile", str(output)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    pipeline = next(yaml.safe_load_all(output.read_text()))
    assert _default(pipeline, "trainer_image") == config.image("trainer-cpu")
    # The CPU variant differs in its image only: the chart (ci/kind-values.yaml:
    # gpusPerWorker 0) or the run's parameters say where it trains.
    _assert_nothing_pins_where_training_runs(pipeline, _platform(output))
    for parameter, unset in PLACEMENT_PARAMETERS.items():
        assert _default(pipeline, parameter) == unset, parameter
