"""Run the whole pipeline on this machine: `python -m pipelines.run_local`.

No cluster and no cloud: the pipeline runs under KFP's local SubprocessRunner in the
current virtualenv; its ingest step generates the embedded synthetic dataset and
downloads it over HTTP from 127.0.0.1 (so ingest exercises its real download path);
training steps run their TFJobs as local processes.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

from kfp import local

from landmarks.evaluate.scores import REPORT_HTML_FILE, SUMMARY_FILE
from pipelines.landmark_pipeline import landmark_pipeline

DEFAULT_WORKDIR = Path("build/demo")
# The demo's dataset and worker defaults are the pipeline's own parameter defaults.
PIPELINE_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(landmark_pipeline.pipeline_func).parameters.items()
}


def run_demo(
    workdir: Path,
    *,
    classes: int,
    images_per_class: int,
    seed: int,
    workers: int,
    profile: str,
    weights: str,
) -> dict[str, str]:
    """Run the pipeline on the embedded dataset; return the paths of its outputs."""
    # use_venv=False: tasks run in this interpreter, which already has the package; a
    # per-task venv would pip install from an index on every step.
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(workdir.resolve() / "runs"),
    )
    run = landmark_pipeline(
        # No metadata: ingest generates the embedded dataset and downloads it from a
        # server on 127.0.0.1.
        embedded_classes=classes,
        embedded_images_per_class=images_per_class,
        seed=seed,
        executor="local",
        workers=workers,
        profile=profile,
        # No hub downloads here: stages 2 and 3 start from random weights unless a no-top
        # weights file is given.
        weights=weights,
    )
    return {name: artifact.path for name, artifact in run.outputs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--classes", type=int, default=PIPELINE_DEFAULTS["embedded_classes"])
    parser.add_argument(
        "--images-per-class", type=int, default=PIPELINE_DEFAULTS["embedded_images_per_class"]
    )
    parser.add_argument("--seed", type=int, default=PIPELINE_DEFAULTS["seed"])
    parser.add_argument(
        "--workers", type=int, default=PIPELINE_DEFAULTS["workers"], help="TFJob workers per stage"
    )
    parser.add_argument("--profile", default="demo", help="trainer profile (demo, tiny, full)")
    parser.add_argument(
        "--weights", default="none", help="stage 2/3 base weights: none or a no-top weights file"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    outputs = run_demo(
        args.workdir,
        classes=args.classes,
        images_per_class=args.images_per_class,
        seed=args.seed,
        workers=args.workers,
        profile=args.profile,
        weights=args.weights,
    )
    print(f"\npipeline finished in {time.monotonic() - started:.0f} s")
    for name, path in outputs.items():
        print(f"  {name:<10} {path}")
    evaluation = Path(outputs["evaluation"])
    summary = evaluation / SUMMARY_FILE
    print(f"\nreport:       {evaluation / REPORT_HTML_FILE}")
    print(f"summary.json: {summary}")
    results = json.loads(summary.read_text())
    print(f"best model:   {results['best_model']}")
    for name, scores in results["models"].items():
        top1, top5, gap = scores["top1"], scores["top5"], scores["gap"]
        print(f"  {name:<22} top1 {top1:.3f}  top5 {top5:.3f}  gap {gap:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
