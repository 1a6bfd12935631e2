"""Classification metrics for the evaluation stage, in plain numpy.

Labels are class indices (`int`); `-1` marks a distractor, a test image that shows no
landmark at all. Every function is pure: arrays in, numbers or arrays out.

Tie handling, everywhere: orderings are stable. GAP ranks predictions by confidence,
highest first, and equal confidences keep the order the caller gave them (the pipeline
passes test images sorted by id, which matches the Kaggle/DELF tie-break of "score
descending, then id ascending"). Top-k ranks classes by probability, highest first, and
equal probabilities go to the lower class index, so top-1 agrees with `argmax`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_LABEL = -1


def _as_labels(
    values: Sequence[int | None] | np.ndarray, what: str, n_classes: int | None = None
) -> np.ndarray:
    """Integer label array with `None` mapped to NO_LABEL, checked against `n_classes`."""
    if isinstance(values, np.ndarray):
        arr = values
    else:
        # No dtype= here: it would truncate a float label (0.7 -> class 0) before the check.
        listed = [NO_LABEL if v is None else v for v in values]
        arr = np.asarray(listed) if listed else np.empty(0, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must hold integer class indices or None, got {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    high = n_classes if n_classes is not None else np.iinfo(np.int64).max
    bad = arr[(arr < NO_LABEL) | (arr >= high)]
    if bad.size:
        raise ValueError(f"{what} has class {bad[0]} outside 0..{high - 1}")
    return arr


def global_average_precision(
    true_labels: Sequence[int | None] | np.ndarray,
    pred_labels: Sequence[int | None] | np.ndarray,
    confidences: Sequence[float] | np.ndarray,
) -> float:
    """Global Average Precision (micro-AP) as scored in the Kaggle landmark challenges.

    One prediction per test image. All predictions are ranked by confidence, highest
    first, and `GAP = (1/M) * sum_i P(i) * rel(i)`, where `P(i)` is the precision over
    the first `i` predictions, `rel(i)` is 1 when prediction `i` is correct, and `M` is
    the number of test images that show a landmark.

    Args:
        true_labels: true class per image; `None` or `-1` for a distractor.
        pred_labels: predicted class per image; `None` or `-1` for "no prediction",
            which costs nothing (it takes no rank).
        confidences: confidence of each prediction; ignored where there is none.

    Returns:
        GAP in [0, 1]; 0.0 when no image shows a landmark (M = 0).

    Ties: a stable sort, so equal confidences keep the input order.
    """
    true = _as_labels(true_labels, "true_labels")
    pred = _as_labels(pred_labels, "pred_labels")
    conf = np.asarray(confidences, dtype=np.float64)
    if not (true.shape == pred.shape == conf.shape):
        raise ValueError(
            f"true_labels, pred_labels and confidences differ in length: "
            f"{true.shape[0]}, {pred.shape[0]}, {conf.shape[0] if conf.ndim else 0}"
        )
    predicted = pred != NO_LABEL
    if np.isnan(conf[predicted]).any():
        raise ValueError("confidences contain NaN")
    m = int(np.count_nonzero(true != NO_LABEL))
    if m == 0:
        return 0.0
    order = np.argsort(-conf[predicted], kind="stable")
    correct = (pred[predicted] == true[predicted])[order]
    hits = np.cumsum(correct)
    precision_at_i = hits / np.arange(1, correct.size + 1)
    return float(np.sum(precision_at_i * correct) / m)


def top_k_indices(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores per row, best first; ties go to the lower index.

    `k` is capped at the number of classes, so with 3 classes "top-5" is top-3.
    """
    scores = np.asarray(probs)
    if scores.ndim != 2:
        raise ValueError(f"probs must be (images, classes), got shape {scores.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def top_k_accuracy(
    true_labels: Sequence[int | None] | np.ndarray, topk: np.ndarray, k: int | None = None
) -> float:
    """Share of landmark images whose true class is among their first `k` ranked classes.

    Args:
        true_labels: true class per image; distractors (`None`/`-1`) are left out, as in
            the DELF reference `Top1Accuracy`: they have no right answer to rank.
        topk: ranked class indices per image, best first, e.g. from `top_k_indices`.
        k: how many of the ranked classes count; default all columns of `topk`. Capped
            at the columns available (fewer than 5 classes: top-5 means top-all).

    Returns:
        Accuracy in [0, 1]; 0.0 when there is no landmark image.
    """
    true = _as_labels(true_labels, "true_labels")
    ranked = np.asarray(topk)
    if ranked.ndim != 2 or ranked.shape[0] != true.shape[0]:
        raise ValueError(
            f"topk must be (images, k) with {true.shape[0]} rows, got shape {ranked.shape}"
        )
    k = ranked.shape[1] if k is None else min(k, ranked.shape[1])
    keep = true != NO_LABEL
    if not keep.any():
        return 0.0
    hits = (ranked[keep, :k] == true[keep, None]).any(axis=1)
    return float(hits.mean())


def confusion_matrix(
    true_labels: Sequence[int | None] | np.ndarray,
    pred_labels: Sequence[int | None] | np.ndarray,
    n_classes: int,
) -> np.ndarray:
    """Counts `[true, predicted]` over landmark images; distractors are left out.

    A distractor has no true row; its predictions still count against precision (see
    `precision_recall`).
    """
    true = _as_labels(true_labels, "true_labels", n_classes)
    pred = _as_labels(pred_labels, "pred_labels", n_classes)
    if true.shape != pred.shape:
        raise ValueError(f"true_labels and pred_labels differ in length: {true.size}, {pred.size}")
    keep = (true != NO_LABEL) & (pred != NO_LABEL)
    flat = true[keep] * n_classes + pred[keep]
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@dataclass(frozen=True)
class PerClass:
    """Per-class scores; NaN where undefined (nothing predicted, or no test image)."""

    precision: np.ndarray
    recall: np.ndarray
    support: np.ndarray  # test images of that class
    predicted: np.ndarray  # predictions of that class, distractors included


def precision_recall(
    true_labels: Sequence[int | None] | np.ndarray,
    pred_labels: Sequence[int | None] | np.ndarray,
    n_classes: int,
) -> PerClass:
    """Per-class precision and recall.

    A prediction of class c on a distractor is a false positive for c, so distractors
    lower precision; they cannot change recall.
    """
    true = _as_labels(true_labels, "true_labels", n_classes)
    pred = _as_labels(pred_labels, "pred_labels", n_classes)
    if true.shape != pred.shape:
        raise ValueError(f"true_labels and pred_labels differ in length: {true.size}, {pred.size}")
    tp = np.bincount(true[(true == pred) & (true != NO_LABEL)], minlength=n_classes)
    support = np.bincount(true[true != NO_LABEL], minlength=n_classes)
    predicted = np.bincount(pred[pred != NO_LABEL], minlength=n_classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), np.nan)
        recall = np.where(support > 0, tp / np.maximum(support, 1), np.nan)
    return PerClass(precision=precision, recall=recall, support=support, predicted=predicted)
