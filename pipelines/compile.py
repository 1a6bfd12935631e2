"""Compile the pipeline to YAML: `python -m pipelines.compile [OUTPUT]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from kfp import compiler

from pipelines.landmark_pipeline import landmark_pipeline

DEFAULT_OUTPUT = Path("build/pipeline.yaml")


def compile_pipeline(output: Path = DEFAULT_OUTPUT) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(landmark_pipeline, str(output))
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    print(f"compiled: {compile_pipeline(args.output)}")


if __name__ == "__main__":
    main()
