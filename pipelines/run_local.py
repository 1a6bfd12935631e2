"""Run the whole pipeline on this machine: `python -m pipelines.run_local`.

No cluster and no cloud: the embedded synthetic dataset is generated, served over
HTTP on 127.0.0.1 (so ingest exercises its real download path), and the pipeline runs
under KFP's local SubprocessRunner in the current virtualenv.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kfp import local

from landmarks import synthetic
from pipelines.landmark_pipeline import landmark_pipeline

DEFAULT_WORKDIR = Path("build/demo")


def run_demo(workdir: Path, *, classes: int, images_per_class: int, seed: int) -> dict[str, str]:
    """Generate and serve the embedded dataset, run the pipeline, return its output paths."""
    workdir = workdir.resolve()
    data_dir = workdir / "data"
    with synthetic.serve(data_dir) as base_url:
        synthetic.generate(
            data_dir,
            classes=classes,
            images_per_class=images_per_class,
            seed=seed,
            base_url=base_url,
        )
        print(f"embedded dataset: {data_dir} served at {base_url}", flush=True)
        # use_venv=False: tasks run in this interpreter, which already has the package;
        # a per-task venv would pip install from an index on every step.
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(workdir / "runs"),
        )
        run = landmark_pipeline(
            metadata=str(data_dir / "train.csv"),
            labels=str(data_dir / "train_label_to_category.csv"),
            seed=seed,
        )
    return {name: artifact.path for name, artifact in run.outputs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--images-per-class", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    started = time.monotonic()
    outputs = run_demo(
        args.workdir,
        classes=args.classes,
        images_per_class=args.images_per_class,
        seed=args.seed,
    )
    print(f"\npipeline finished in {time.monotonic() - started:.0f} s")
    for name, path in outputs.items():
        print(f"  {name:<10} {path}")
    summary = Path(outputs["splits"]) / "summary.json"
    if summary.exists():
        print(json.dumps(json.loads(summary.read_text()).get("totals", {}), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
