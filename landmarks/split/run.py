"""The split stage end to end: check the options, read the ingest output, plan, write.

Input: an ingest output directory (see `landmarks.split.read`). Output: a split directory
(see `landmarks.split.write`). Which image lands where: `landmarks.split.plan`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from landmarks import storage
from landmarks.errors import LandmarksError
from landmarks.split.label_map import LabelEntry
from landmarks.split.plan import SPLITS, Plan, SplitRow, plan_split
from landmarks.split.read import check_sources, read_ingest_manifest, read_labels
from landmarks.split.write import COPY_WORKERS, write_split

log = logging.getLogger(__name__)


@dataclass
class SplitOptions:
    """What to split and how.

    Attributes:
        ingest_dir: Ingest output directory, local path or gs://, s3://, minio:// URI.
        out: Output directory, local path or gs://, s3://, minio:// URI; replaced if it holds
            a split.
        min_images: Keep landmarks with at least this many distinct valid images.
        top_k: Then keep only the K landmarks with most images (None: all).
        max_per_class: Then keep at most this many distinct images per landmark (None: all).
        ratios: Shares of train, validation and test; each above 0, summing to 1.
        seed: Decides which images go to which split (and which survive the cap).
        progress: Show a progress bar while copying images.
        workers: Concurrent copies when the source or the output is in an object store.
    """

    ingest_dir: str
    out: str
    min_images: int = 3
    top_k: int | None = None
    max_per_class: int | None = None
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    progress: bool = True
    workers: int = COPY_WORKERS


@dataclass
class SplitResult:
    """What `run_split` wrote."""

    out: str
    label_map: list[LabelEntry]
    rows: list[SplitRow]
    # split -> landmark_id -> number of images
    counts: dict[str, dict[int, int]]
    summary: dict = field(repr=False)

    @property
    def totals(self) -> dict[str, int]:
        return dict(self.summary["totals"])

    @property
    def stats(self) -> dict[str, int]:
        """Flat numbers for a metrics panel (KFP Metrics, logs)."""
        dropped = self.summary["dropped"]
        return {
            "classes": len(self.label_map),
            **{f"{name}_images": self.totals[name] for name in SPLITS},
            "input_images": self.summary["input"]["ok_rows"],
            "dropped_classes": dropped["classes_below_min_images"]
            + dropped["classes_beyond_top_k"],
            "capped_images": dropped["images_beyond_max_per_class"],
        }

    def format_counts(self) -> str:
        """A table of images per class and split, for the command line."""
        names = {e.landmark_id: e.name for e in self.label_map}
        width = max(len("landmark_id"), *(len(str(e.landmark_id)) for e in self.label_map))
        head = f"{'class':>5}  {'landmark_id':>{width}}  " + "".join(f"{s:>11}" for s in SPLITS)
        lines = [head + "  name"]
        for entry in self.label_map:
            cells = "".join(f"{self.counts[s].get(entry.landmark_id, 0):>11}" for s in SPLITS)
            lines.append(
                f"{entry.class_index:>5}  {entry.landmark_id:>{width}}  {cells}  "
                f"{names[entry.landmark_id]}".rstrip()
            )
        total = "".join(f"{self.totals[s]:>11}" for s in SPLITS)
        lines.append(f"{'total':>5}  {'':>{width}}  {total}")
        return "\n".join(lines)


def _validate(opts: SplitOptions) -> tuple[float, float, float]:
    ratios = tuple(float(r) for r in opts.ratios)
    if len(ratios) != 3:
        raise LandmarksError(f"ratios: expected 3 values (train, validation, test), got {ratios}")
    if any(not math.isfinite(r) or r <= 0 for r in ratios):
        raise LandmarksError(f"ratios: each must be above 0, got {ratios}")
    if not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise LandmarksError(f"ratios must sum to 1, got {ratios} (sum {sum(ratios):g})")
    if opts.min_images < 1:
        raise LandmarksError(f"min_images must be at least 1, got {opts.min_images}")
    if opts.top_k is not None and opts.top_k < 2:
        raise LandmarksError(
            f"top_k must be at least 2 (a classifier needs two classes), got {opts.top_k}"
        )
    if opts.workers < 1:
        raise LandmarksError(f"workers must be at least 1, got {opts.workers}")
    if opts.max_per_class is not None and opts.max_per_class < 1:
        raise LandmarksError(f"max_per_class must be at least 1, got {opts.max_per_class}")
    return ratios[0], ratios[1], ratios[2]


def _summary(
    plan: Plan, opts: SplitOptions, ratios: Sequence[float], total_rows: int, ok_rows: int
) -> dict:
    counts = {name: Counter() for name in SPLITS}
    for row in plan.rows:
        counts[row.split][row.landmark_id] += 1
    per_split = {
        name: {str(e.landmark_id): counts[name][e.landmark_id] for e in plan.label_map}
        for name in SPLITS
    }
    totals = {name: sum(counts[name].values()) for name in SPLITS}
    totals["all"] = sum(totals.values())
    return {
        "classes": len(plan.label_map),
        "splits": per_split,
        "totals": totals,
        "filters": {
            "min_images": opts.min_images,
            "top_k": opts.top_k,
            "max_per_class": opts.max_per_class,
            "ratios": list(ratios),
            "seed": opts.seed,
        },
        "input": {
            "ingest_dir": opts.ingest_dir,
            "rows": total_rows,
            "ok_rows": ok_rows,
            "classes": plan.classes_in_input,
        },
        "dropped": plan.dropped,
    }


def run_split(opts: SplitOptions) -> SplitResult:
    """Filter, split and copy an ingest output into class folders.

    Reading is `landmarks.split.read`, the rules `landmarks.split.plan`, the output and how
    a re-run replaces it `landmarks.split.write`.

    Raises:
        InputError: A malformed ingest manifest or labels file, or an image it names that
            is missing (file, row and field named).
        LandmarksError: Bad options, filters that leave fewer than two landmarks or an
            empty split, or an output directory that is not a split.
    """
    ratios = _validate(opts)
    ingest = opts.ingest_dir.rstrip("/") if storage.is_remote(opts.ingest_dir) else opts.ingest_dir
    out = opts.out.rstrip("/") if storage.is_remote(opts.out) else opts.out
    if _same_or_inside(out, ingest):
        raise LandmarksError(f"output {out} must not be the ingest directory or inside it")

    images, total_rows = read_ingest_manifest(ingest)
    names = read_labels(ingest)
    plan = plan_split(
        images,
        names,
        min_images=opts.min_images,
        top_k=opts.top_k,
        max_per_class=opts.max_per_class,
        ratios=ratios,
        seed=opts.seed,
    )
    summary = _summary(plan, opts, ratios, total_rows, len(images))
    log.info(
        "split %d images of %d landmarks: %s",
        summary["totals"]["all"],
        len(plan.label_map),
        ", ".join(f"{s} {summary['totals'][s]}" for s in SPLITS),
    )

    check_sources(ingest, images)
    write_split(ingest, out, plan, summary, progress=opts.progress, workers=opts.workers)

    counts = {name: {int(k): v for k, v in summary["splits"][name].items()} for name in SPLITS}
    return SplitResult(
        out=out, label_map=plan.label_map, rows=plan.rows, counts=counts, summary=summary
    )


def _same_or_inside(out: str, ingest: str) -> bool:
    if storage.is_remote(out) != storage.is_remote(ingest):
        return False
    if storage.is_remote(out):
        return out == ingest or out.startswith(ingest + "/")
    a, b = Path(out).absolute(), Path(ingest).absolute()
    return a == b or b in a.parents
