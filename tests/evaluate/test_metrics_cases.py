"""More hand-worked metric cases: long runs of ties, array inputs, small class counts, and
errors that name the argument at fault. Each case was found missing by `make mutation`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from landmarks.evaluate.metrics import (
    confusion_matrix,
    global_average_precision,
    precision_recall,
    top_k_accuracy,
    top_k_indices,
)

# -- GAP --------------------------------------------------------------------------------------


def test_gap_long_runs_of_equal_confidence_keep_input_order() -> None:
    # 40 landmark images. 20 predictions at 0.9: the first 10 right, the next 10 wrong; 20 at
    # 0.5, all wrong, interleaved with them. Input order among the 0.9s puts the 10 hits on
    # ranks 1..10 (precision 1 each), so GAP = 10 / 40. Runs this long are where an unstable
    # sort (numpy's default) reorders equal keys.
    conf = np.array([0.9, 0.5] * 20)
    true = list(range(40))
    pred = []
    hits = 0
    for i, c in enumerate(conf):
        right = c == 0.9 and hits < 10
        hits += right
        pred.append(true[i] if right else (true[i] + 1) % 40)
    assert global_average_precision(true, pred, conf) == pytest.approx(10 / 40)


def test_gap_takes_numpy_arrays_of_any_integer_width() -> None:
    true = np.array([3, 1, 2], dtype=np.int32)
    pred = np.array([3, 0, 2], dtype=np.int16)
    # Ranks: correct (P=1), wrong, correct (P=2/3); M=3.
    gap = global_average_precision(true, pred, np.array([0.9, 0.8, 0.7]))
    assert gap == pytest.approx((1 + 2 / 3) / 3)


def test_gap_integer_confidences_rank_zero_last() -> None:
    # Confidences as unsigned counts (e.g. votes): 0 is the lowest, not the highest.
    votes = np.array([0, 200], dtype=np.uint8)
    # The right prediction has 200 votes: it ranks first, P=1, M=2 -> 1/2.
    assert global_average_precision([5, 6], [4, 6], votes) == pytest.approx(0.5)


def test_gap_length_mismatch_names_each_length() -> None:
    with pytest.raises(ValueError, match=r"differ in length: 3, 3, 2$"):
        global_average_precision([0, 1, 2], [0, 1, 2], [0.5, 0.4])


def test_gap_single_confidence_for_many_images_is_a_length_mismatch() -> None:
    with pytest.raises(ValueError, match=r"differ in length: 2, 2, 0$"):
        global_average_precision([0, 1], [0, 1], 0.5)


def test_gap_nan_confidence_on_a_prediction_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^confidences contain NaN$"):
        global_average_precision([0, 1], [0, 1], [0.5, math.nan])


@pytest.mark.parametrize(
    ("true", "pred", "message"),
    [
        ([[0, 1]], [0, 1], r"^true_labels must be one-dimensional, got shape \(1, 2\)$"),
        ([0, 1], [[0, 1]], r"^pred_labels must be one-dimensional, got shape \(1, 2\)$"),
        ([0, -2], [0, 1], r"^true_labels has class -2 outside"),
        ([0, 1], [-3, 1], r"^pred_labels has class -3 outside"),
    ],
)
def test_gap_bad_labels_name_the_argument(true: list, pred: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        global_average_precision(np.array(true), np.array(pred), [0.5, 0.4])


def test_labels_of_float_dtype_are_refused_naming_the_dtype() -> None:
    with pytest.raises(ValueError, match=r"^true_labels must hold integer class indices or None"):
        global_average_precision(np.array([0.0, 1.0]), [0, 1], [0.5, 0.4])


# -- top-k ------------------------------------------------------------------------------------


def test_top_1_is_the_argmax() -> None:
    probs = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    assert top_k_indices(probs, 1).tolist() == [[1], [0]]


def test_top_k_many_tied_classes_rank_lower_class_first() -> None:
    # 40 classes alternating 0.2 / 0.5: the 0.5s are 1, 3, 5, ... in class order.
    probs = np.tile([0.2, 0.5], (1, 20))
    assert top_k_indices(probs, 5).tolist() == [[1, 3, 5, 7, 9]]


@pytest.mark.parametrize("k", [0, -1])
def test_top_k_below_one_is_refused(k: int) -> None:
    with pytest.raises(ValueError, match=rf"^k must be at least 1, got {k}$"):
        top_k_indices(np.array([[0.5, 0.5]]), k)


def test_top_k_needs_a_matrix_of_scores() -> None:
    with pytest.raises(ValueError, match=r"^probs must be \(images, classes\), got shape \(3,\)$"):
        top_k_indices(np.array([0.1, 0.2, 0.7]), 1)


def test_top_k_accuracy_without_k_counts_every_ranked_column() -> None:
    ranked = np.array([[2, 0], [1, 2], [0, 1]])
    # Image 0 (class 0) is hit in column 2, image 1 (class 0) is missed, image 2 hit first.
    assert top_k_accuracy([0, 0, 0], ranked) == pytest.approx(2 / 3)


def test_top_k_accuracy_refuses_a_flat_ranking() -> None:
    with pytest.raises(ValueError, match=r"^topk must be \(images, k\) with 3 rows, got shape"):
        top_k_accuracy([0, 1, 2], np.array([0, 1, 2]))


def test_top_k_accuracy_names_the_rows_it_expected() -> None:
    with pytest.raises(ValueError, match=r"with 3 rows, got shape \(2, 5\)$"):
        top_k_accuracy([0, 1, 2], np.zeros((2, 5), dtype=int))


def test_top_k_accuracy_bad_true_label_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^true_labels has class -2"):
        top_k_accuracy([0, -2], np.array([[0], [1]]))


# -- confusion matrix and per-class scores ------------------------------------------------------


def test_confusion_matrix_has_a_row_and_column_for_classes_never_seen() -> None:
    matrix = confusion_matrix([0, 1], [1, 1], n_classes=4)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 1] = expected[1, 1] = 1
    assert matrix.tolist() == expected.tolist()


@pytest.mark.parametrize("metric", [confusion_matrix, precision_recall])
@pytest.mark.parametrize(
    ("true", "pred", "message"),
    [
        ([0, 3], [0, 1], r"^true_labels has class 3 outside 0\.\.2$"),
        ([0, 1], [0, 3], r"^pred_labels has class 3 outside 0\.\.2$"),
        ([0, 1], [0, 1, 2], r"^true_labels and pred_labels differ in length: 2, 3$"),
    ],
)
def test_per_class_metrics_name_the_bad_argument(
    metric: object, true: list, pred: list, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        metric(true, pred, n_classes=3)  # type: ignore[operator]


def test_a_class_predicted_once_and_right_has_precision_one() -> None:
    scores = precision_recall([0, 1, 1], [0, 1, 0], n_classes=2)
    # Class 0: predicted twice, right once; class 1: predicted once, right.
    assert scores.precision.tolist() == [0.5, 1.0]
    assert scores.recall.tolist() == [1.0, 0.5]


@pytest.mark.parametrize("labels", [[0.7, 1], [0, 1.0], [True, 1.5]])
def test_a_non_integer_label_in_a_list_is_refused_not_truncated(labels: list) -> None:
    # 0.7 used to become class 0 and count as a correct prediction of class 0.
    with pytest.raises(ValueError, match="true_labels must hold integer class indices"):
        global_average_precision(labels, [0, 1], [0.9, 0.8])
