"""Compile the pipeline to YAML: `python -m pipelines.compile [OUTPUT] [--mode cluster|local]`.

The mode is the default of the pipeline's `executor` parameter, the one switch between
training as TFJobs on the cluster (`cluster`, the default) and as processes inside the
step's own pod (`local`); a run may still override it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kfp import compiler

from landmarks.errors import LandmarksError
from landmarks.launch import EXECUTORS
from pipelines.landmark_pipeline import landmark_pipeline

DEFAULT_OUTPUT = Path("build/pipeline.yaml")
MODES = EXECUTORS


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
    """Fail when the compiled pipeline names a path of this machine: a cluster has none."""
    text = path.read_text()
    here = {
        str(Path(__file__).resolve().parents[1]),
        str(Path.home()),
        str(Path.cwd()),
        os.environ.get("TMPDIR", "/tmp"),
    }
    found = sorted(p for p in here if len(p) > 1 and p in text)
    if found:
        raise LandmarksError(
            f"{path}: the cluster pipeline names local paths ({', '.join(found)}); "
            "pipeline parameter defaults must be gs:// URIs or empty"
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
