"""Compile the pipeline to YAML: `python -m pipelines.compile [OUTPUT] [--mode cluster|local]`.

The mode is the default of the pipeline's `executor` parameter, the one switch between
training as TFJobs on the cluster (`cluster`, the default) and as processes inside the
step's own pod (`local`); a run may still override it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

from landmarks.errors import LandmarksError
from landmarks.pipeline_steps.training import EXECUTORS
from pipelines.landmark_pipeline import landmark_pipeline

DEFAULT_OUTPUT = Path("build/pipeline.yaml")
MODES = EXECUTORS
REPO = Path(__file__).resolve().parents[1]


def compile_pipeline(output: Path = DEFAULT_OUTPUT, mode: str = "cluster") -> Path:
    if mode not in MODES:
        raise LandmarksError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(
        landmark_pipeline, str(output), pipeline_parameters={"executor": mode}
    )
    if mode == "cluster":
        check_no_local_paths(output)
    return output


def check_no_local_paths(path: Path) -> None:
    """Fail when the compiled pipeline names a path of this machine: a cluster has none.

    Parameter defaults and task constants must be object-store URIs, image references or plain
    values; and nothing anywhere may name this checkout or home directory.
    """
    import yaml

    text = path.read_text()
    spec = next(yaml.safe_load_all(text))
    values = [
        (f"parameter {name}", p.get("defaultValue"))
        for name, p in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
    ]
    for task_name, task in spec["root"]["dag"]["tasks"].items():
        for name, p in task.get("inputs", {}).get("parameters", {}).items():
            values.append(
                (f"task {task_name} input {name}", p.get("runtimeValue", {}).get("constant"))
            )
    found = [
        f"{where}={value!r}"
        for where, value in values
        if isinstance(value, str) and value.startswith(("/", "~", "file:"))
    ]
    found += [f"the path {p}" for p in {str(REPO), str(Path.home())} if p in text]
    if found:
        raise LandmarksError(
            f"{path}: the cluster pipeline names local paths ({'; '.join(sorted(found))}); "
            "defaults must be gs://, s3:// or minio:// URIs, or empty"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--mode", choices=MODES, default="cluster", help="default of the executor parameter"
    )
    args = parser.parse_args()
    print(f"compiled ({args.mode}): {compile_pipeline(args.output, args.mode)}")


if __name__ == "__main__":
    main()
