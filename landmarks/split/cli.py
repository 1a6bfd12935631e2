"""`landmarks split`: filter landmarks and write train / validation / test class folders."""

from __future__ import annotations

import argparse


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected three numbers like 0.8,0.1,0.1, got {text!r}"
        ) from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(
            f"expected three numbers (train,validation,test), got {text!r}"
        )
    return values[0], values[1], values[2]


def register(subparsers: argparse._SubParsersAction) -> None:
    from landmarks.split import SplitOptions  # light: no pandas, no TensorFlow

    defaults = SplitOptions(ingest_dir="", out="")
    parser = subparsers.add_parser(
        "split",
        help="stratified train/validation/test class folders from an ingest output",
        description=(
            "Keep landmarks with enough valid images, split each one by the ratios (identical "
            "images always together) and write SPLIT/{train,validation,test}/<landmark_id>/, "
            "manifest.csv, label_map.csv and summary.json. An existing split in --out is replaced."
        ),
    )
    parser.add_argument(
        "--ingest-dir", required=True, help="ingest output (local, gs://, s3:// or minio://)"
    )
    parser.add_argument(
        "--out", required=True, help="output directory (local, gs://, s3:// or minio://)"
    )
    parser.add_argument(
        "--min-images",
        type=int,
        default=defaults.min_images,
        help="minimum distinct valid images per landmark",
    )
    parser.add_argument(
        "--top-k", type=int, default=defaults.top_k, help="keep the K largest landmarks"
    )
    parser.add_argument(
        "--max-per-class",
        type=int,
        default=defaults.max_per_class,
        help="cap on images per landmark",
    )
    parser.add_argument(
        "--ratios",
        type=_ratios,
        default=defaults.ratios,
        help="train,validation,test shares summing to 1 (default "
        + ",".join(f"{r:g}" for r in defaults.ratios)
        + ")",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from landmarks.split import SplitOptions, run_split

    result = run_split(
        SplitOptions(
            ingest_dir=args.ingest_dir,
            out=args.out,
            min_images=args.min_images,
            top_k=args.top_k,
            max_per_class=args.max_per_class,
            ratios=args.ratios,
            seed=args.seed,
        )
    )
    print(result.format_counts())
    print(f"split written to {result.out}")
    return 0
