"""`landmarks evaluate --split SPLIT --model name=DIR [--model ...] --out OUT`."""

from __future__ import annotations

import argparse
import logging

from landmarks.errors import InputError

log = logging.getLogger(__name__)


def parse_models(specs: list[str]) -> dict[str, str]:
    """`name=DIR` pairs in order; a bare `DIR` is named after its last path component."""
    models: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            path = spec
            name = path.rstrip("/").rsplit("/", 1)[-1]
        if not name or not path:
            raise InputError(f"expected NAME=DIR, got {spec!r}", field="--model")
        if name in models:
            raise InputError(f"model name {name!r} given twice", field="--model")
        models[name] = path
    return models


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score trained models on the test split and write a report",
        description="Predict the split's test images with each model; write summary.json, "
        "report.html, report.md, per-model predictions.csv and pictures to OUT.",
    )
    parser.add_argument(
        "--split", required=True, help="split dir (local, gs://, s3:// or minio://)"
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a trained model dir (local or a gs://, s3://, minio:// URI) and its display name; "
        "repeatable",
    )
    parser.add_argument("--out", required=True, help="output dir (local, gs://, s3://, minio://)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--worst-k", type=int, default=16, help="mistakes shown in the worst-images grid"
    )
    parser.add_argument(
        "--distractors", default=None, help="dir of images with no landmark (counted in GAP)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from landmarks.evaluate.run import EvaluateOptions, run_evaluate

    result = run_evaluate(
        EvaluateOptions(
            split_dir=args.split,
            models=parse_models(args.model),
            out=args.out,
            batch_size=args.batch_size,
            worst_k=args.worst_k,
            distractors_dir=args.distractors,
        )
    )
    k = result.top_k
    for name, m in result.models.items():
        mark = "*" if name == result.best_model else " "
        print(f"{mark} {name:<20} top1 {m.top1:.4f}  top{k} {m.top5:.4f}  GAP {m.gap:.4f}")
    print(f"best model: {result.best_model}")
    print(f"report: {result.report_html_uri}")
    return 0
