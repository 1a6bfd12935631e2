"""Run one task of the compiled pipeline the way a KFP v2 pod runs it, without KFP's backend.

The compiled YAML names, for each task, an image, a command and args whose `{{$}}` the
backend's driver replaces with the executor input: a JSON document of the task's
parameter values, its input artifacts (uri, metadata) and where its outputs go. This
module builds that document from the YAML itself (component defaults, the pipeline's
parameter defaults, the task's constants and placeholders, the training tasks' TaskConfig)
with artifact URIs that are plain paths under one directory, which a test bind-mounts into
the container (or uses as is with a local Python), and reads back the executor output
file the task writes (its output parameters and the metadata of its artifacts: metrics
live there, not in files).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
EXECUTOR_OUTPUT_FILE = "executor_output.json"
# What the backend substitutes in runtime constants such as run_id and kfp_task.
JOB_UUID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"
TASK_NAME_PLACEHOLDER = "{{$.pipeline_task_name}}"


def compile_to(
    path: Path, python: str = sys.executable, env: Mapping[str, str] | None = None
) -> Path:
    """`python -m pipelines.compile PATH`, as `make compile` runs it; returns PATH."""
    subprocess.run(
        [python, "-m", "pipelines.compile", str(path)],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=True,
        capture_output=True,
        timeout=180,
    )
    return path


@dataclass(frozen=True)
class Artifact:
    """An artifact as the executor input carries it."""

    name: str
    schema_title: str
    uri: str
    metadata: dict[str, Any] = field(default_factory=dict)
    schema_version: str = "0.0.1"

    def runtime(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": {"schemaTitle": self.schema_title, "schemaVersion": self.schema_version},
            "uri": self.uri,
            "metadata": dict(self.metadata),
        }


@dataclass
class Workspace:
    """A host directory that the executor sees at `mount` (the same path when run locally)."""

    host: Path
    mount: str

    def uri(self, *parts: str) -> str:
        return "/".join([self.mount.rstrip("/"), *parts])

    def host_path(self, uri: str) -> Path:
        if uri != self.mount and not uri.startswith(self.mount.rstrip("/") + "/"):
            raise ValueError(f"{uri} is not under the workspace mount {self.mount}")
        return self.host / uri[len(self.mount) :].lstrip("/")


@dataclass
class ExecutorCall:
    """One task's container: image, argv with the executor input filled in, its outputs."""

    task: str
    image: str
    argv: list[str]
    env: dict[str, str]
    executor_input: dict[str, Any]
    workspace: Workspace

    @property
    def output_file(self) -> Path:
        return self.workspace.host_path(self.executor_input["outputs"]["outputFile"])

    def output_artifact(self, name: str) -> Artifact:
        (runtime,) = self.executor_input["outputs"]["artifacts"][name]["artifacts"]
        return Artifact(name, runtime["type"]["schemaTitle"], runtime["uri"])

    def output_path(self, name: str) -> Path:
        """Where the task writes output artifact `name`, on this machine."""
        return self.workspace.host_path(self.output_artifact(name).uri)

    def result(self) -> ExecutorOutput:
        return ExecutorOutput(json.loads(self.output_file.read_text()))


@dataclass
class ExecutorOutput:
    """The executor output file: output parameters and the artifacts' metadata."""

    data: dict[str, Any]

    def parameter(self, name: str = "Output") -> Any:
        return self.data["parameterValues"][name]

    def metadata(self, artifact: str) -> dict[str, Any]:
        (runtime,) = self.data["artifacts"][artifact]["artifacts"]
        return runtime.get("metadata", {})

    def artifact(self, name: str, schema_title: str) -> Artifact:
        """The output artifact as the next task's input (uri and metadata carried over)."""
        (runtime,) = self.data["artifacts"][name]["artifacts"]
        return Artifact(name, schema_title, runtime["uri"], runtime.get("metadata", {}))


class CompiledPipeline:
    """The two documents `pipelines.compile` writes: the pipeline spec and its platform spec."""

    def __init__(self, path: Path) -> None:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        self.spec: dict[str, Any] = documents[0]
        self.platform: dict[str, Any] = (
            documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
            if len(documents) > 1
            else {}
        )

    @property
    def tasks(self) -> dict[str, Any]:
        return self.spec["root"]["dag"]["tasks"]

    def task_shown_as(self, display_name: str) -> str:
        """The key of the task the KFP UI shows as `display_name` (its taskInfo.name)."""
        (task,) = [k for k, t in self.tasks.items() if t["taskInfo"]["name"] == display_name]
        return task

    def component(self, task: str) -> dict[str, Any]:
        return self.spec["components"][self.tasks[task]["componentRef"]["name"]]

    def executor_label(self, task: str) -> str:
        return self.component(task)["executorLabel"]

    def container(self, task: str) -> dict[str, Any]:
        return self.spec["deploymentSpec"]["executors"][self.executor_label(task)]["container"]

    def image(self, task: str) -> str:
        return self.container(task)["image"]

    def pipeline_default(self, name: str) -> Any:
        return self.spec["root"]["inputDefinitions"]["parameters"][name].get("defaultValue")

    def parameter_values(
        self,
        task: str,
        *,
        run_id: str,
        pipeline_args: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The values the driver resolves: component defaults, then the task's inputs."""
        definitions = self.component(task).get("inputDefinitions", {}).get("parameters", {})
        values: dict[str, Any] = {
            name: d["defaultValue"] for name, d in definitions.items() if "defaultValue" in d
        }
        root = self.spec["root"]["inputDefinitions"]["parameters"]
        for name, source in self.tasks[task].get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                key = source["componentInputParameter"]
                if pipeline_args and key in pipeline_args:
                    values[name] = pipeline_args[key]
                elif "defaultValue" in root[key]:
                    values[name] = root[key]["defaultValue"]
            elif "runtimeValue" in source:
                constant = source["runtimeValue"]["constant"]
                if isinstance(constant, str):
                    constant = constant.replace(JOB_UUID_PLACEHOLDER, run_id).replace(
                        TASK_NAME_PLACEHOLDER, task
                    )
                values[name] = constant
        values.update(overrides or {})
        for name, definition in definitions.items():
            kind = definition.get("parameterType")
            # YAML defaults of integers are floats (3.0); the driver hands integers over.
            if kind == "NUMBER_INTEGER" and isinstance(values.get(name), float):
                values[name] = int(values[name])
            if kind == "TASK_CONFIG":
                values[name] = self.task_config(task)
        return values

    def task_config(self, task: str) -> dict[str, Any]:
        """The TaskConfig the backend hands a passthrough task: its resources and placement."""
        config: dict[str, Any] = {}
        accelerator = self.container(task).get("resources", {}).get("accelerator")
        if accelerator:
            config["resources"] = {
                "limits": {accelerator["resourceType"]: str(accelerator["resourceCount"])}
            }
        platform = self.platform.get(self.executor_label(task), {})
        if platform.get("nodeSelector", {}).get("labels"):
            config["nodeSelector"] = dict(platform["nodeSelector"]["labels"])
        if platform.get("tolerations"):
            config["tolerations"] = [dict(t) for t in platform["tolerations"]]
        return config

    def call(
        self,
        task: str,
        workspace: Workspace,
        *,
        inputs: Mapping[str, Artifact] | None = None,
        run_id: str = "run-0001",
        pipeline_args: Mapping[str, Any] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ExecutorCall:
        """The task's container with a complete executor input; outputs under workspace/task."""
        component = self.component(task)
        wanted = set(component.get("inputDefinitions", {}).get("artifacts", {}))
        given = dict(inputs or {})
        if set(given) != wanted:
            raise ValueError(f"{task} takes input artifacts {sorted(wanted)}, got {sorted(given)}")
        outputs = component.get("outputDefinitions", {})
        executor_input = {
            "inputs": {
                "parameterValues": self.parameter_values(
                    task, run_id=run_id, pipeline_args=pipeline_args, overrides=overrides
                ),
                "artifacts": {
                    name: {"artifacts": [artifact.runtime()]} for name, artifact in given.items()
                },
            },
            "outputs": {
                "artifacts": {
                    name: {
                        "artifacts": [
                            Artifact(
                                name,
                                d["artifactType"]["schemaTitle"],
                                workspace.uri(task, name),
                                schema_version=d["artifactType"].get("schemaVersion", "0.0.1"),
                            ).runtime()
                        ]
                    }
                    for name, d in outputs.get("artifacts", {}).items()
                },
                "parameters": {
                    name: {"outputFile": workspace.uri(task, "parameters", name)}
                    for name in outputs.get("parameters", {})
                },
                "outputFile": workspace.uri(task, EXECUTOR_OUTPUT_FILE),
            },
        }
        container = self.container(task)
        document = json.dumps(executor_input)
        argv = [
            str(part).replace(EXECUTOR_INPUT_PLACEHOLDER, document)
            for part in [*container["command"], *container.get("args", [])]
        ]
        env = {item["name"]: str(item["value"]) for item in container.get("env", [])}
        return ExecutorCall(task, container["image"], argv, env, executor_input, workspace)


def run_with_local_python(
    call: ExecutorCall, python_bin: Path, timeout: float, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The task's very command line, with `python3` resolved to `python_bin`'s environment."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(call.env)
    env.update(extra_env or {})
    env["PATH"] = f"{python_bin.parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        call.argv,
        env=env,
        cwd=call.workspace.host,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def argv_summary(argv: Sequence[str]) -> str:
    """The command line for error messages, without the embedded component source."""
    return " ".join(a if len(a) < 200 else f"<{len(a)} characters>" for a in argv)
