"""GAP, top-k, confusion matrix and per-class scores against hand-worked cases."""

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


def test_gap_correct_wrong_correct_is_five_ninths() -> None:
    # Ranks: correct (P=1), wrong, correct (P=2/3); M=3 -> (1 + 2/3) / 3.
    gap = global_average_precision([1, 2, 3], [1, 0, 3], [0.9, 0.8, 0.7])
    assert gap == pytest.approx((1 + 2 / 3) / 3)
    assert round(gap, 4) == 0.5556


def test_gap_matches_published_kaggle_vector() -> None:
    # evaluations.readthedocs.io kaggle_2020 GAP example: a missing prediction, a wrong one
    # and a prediction on a distractor. Ranked: 010 c, 008 c, 007 w, 005 c, 003 c, 001 c,
    # 002 w -> (1 + 1 + 3/4 + 4/5 + 5/6) / 8.
    truth = {1: 123, 2: None, 3: 999, 4: 123, 5: 999, 6: 888, 7: 666, 8: 666, 9: None, 10: 666}
    guess = {
        1: (123, 0.15),
        2: (123, 0.10),
        3: (999, 0.30),
        5: (999, 0.40),
        7: (555, 0.60),
        8: (666, 0.70),
        10: (666, 0.99),
    }
    ids = sorted(truth)
    gap = global_average_precision(
        [truth[i] for i in ids],
        [guess.get(i, (None, 0.0))[0] for i in ids],
        [guess.get(i, (None, 0.0))[1] for i in ids],
    )
    assert gap == pytest.approx((1 + 1 + 3 / 4 + 4 / 5 + 5 / 6) / 8)
    assert gap == pytest.approx(0.5479166666, abs=1e-9)


def test_gap_distractor_without_prediction_costs_nothing() -> None:
    assert global_average_precision([4, None, 7], [4, None, 7], [0.9, 0.0, 0.8]) == 1.0


def test_gap_confident_prediction_on_distractor_lowers_every_correct_below_it() -> None:
    # Distractor predicted first: correct ones at ranks 2 and 3 -> (1/2 + 2/3) / 2.
    gap = global_average_precision([None, 4, 7], [4, 4, 7], [0.95, 0.9, 0.8])
    assert gap == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_gap_distractor_prediction_ranked_last_changes_nothing() -> None:
    assert global_average_precision([None, 4, 7], [4, 4, 7], [0.1, 0.9, 0.8]) == 1.0


def test_gap_missing_prediction_on_landmark_loses_its_share() -> None:
    assert global_average_precision([4, 7], [4, None], [0.9, 0.99]) == 0.5


def test_gap_ties_keep_input_order() -> None:
    # Equal confidence: a stable sort keeps the given order, so which comes first decides.
    assert global_average_precision([1, 2], [0, 2], [0.5, 0.5]) == 0.25
    assert global_average_precision([2, 1], [2, 0], [0.5, 0.5]) == 0.5


def test_gap_is_zero_without_landmark_images_or_without_hits() -> None:
    assert global_average_precision([None, None], [3, 4], [0.9, 0.8]) == 0.0
    assert global_average_precision([1, 2], [2, 1], [0.9, 0.8]) == 0.0
    assert global_average_precision([], [], []) == 0.0


def test_gap_rejects_vectors_of_different_length() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        global_average_precision([1, 2], [1], [0.5])


def test_top_k_indices_rank_best_first_and_ties_to_lower_class() -> None:
    probs = np.array([[0.1, 0.6, 0.3], [0.4, 0.2, 0.4]])
    assert top_k_indices(probs, 2).tolist() == [[1, 2], [0, 2]]
    # k is capped at the number of classes.
    assert top_k_indices(probs, 5).shape == (2, 3)


def test_top_k_accuracy_against_known_vectors() -> None:
    probs = np.array(
        [
            [0.50, 0.20, 0.10, 0.10, 0.05, 0.05],  # truth 0: rank 1
            [0.30, 0.25, 0.20, 0.12, 0.08, 0.05],  # truth 4: rank 5
            [0.30, 0.25, 0.20, 0.12, 0.08, 0.05],  # truth 5: rank 6
            [0.10, 0.10, 0.60, 0.10, 0.05, 0.05],  # truth 1: rank 3 (ties to lower index)
        ]
    )
    truth = [0, 4, 5, 1]
    topk = top_k_indices(probs, 5)
    assert top_k_accuracy(truth, topk, 1) == 0.25
    assert top_k_accuracy(truth, topk, 2) == 0.25
    assert top_k_accuracy(truth, topk, 3) == 0.5
    assert top_k_accuracy(truth, topk, 5) == 0.75
    assert top_k_accuracy(truth, topk, 1) == float(np.mean(probs.argmax(axis=1) == truth))


def test_top_k_accuracy_with_fewer_classes_than_k_counts_every_class() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
    assert top_k_accuracy([2, 0], top_k_indices(probs, 5), 5) == 1.0


def test_top_k_accuracy_leaves_distractors_out() -> None:
    topk = np.array([[0, 1], [1, 0], [1, 0]])
    assert top_k_accuracy([0, None, 0], topk, 1) == 0.5
    assert top_k_accuracy([None], topk[:1], 1) == 0.0


def test_confusion_matrix_counts_true_rows_predicted_columns_without_distractors() -> None:
    cm = confusion_matrix([0, 0, 1, 2, 2, None], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_confusion_matrix_rejects_class_outside_range() -> None:
    with pytest.raises(ValueError, match=r"class 3 outside 0\.\.2"):
        confusion_matrix([0, 3], [0, 1], 3)


def test_precision_counts_distractor_predictions_recall_does_not() -> None:
    per = precision_recall([0, 0, 1, None], [0, 1, 1, 0], 3)
    assert per.precision[0] == 0.5  # one hit, one prediction on a distractor
    assert per.recall[0] == 0.5
    assert per.precision[1] == 0.5
    assert per.recall[1] == 1.0
    assert math.isnan(per.precision[2]) and math.isnan(per.recall[2])
    assert per.support.tolist() == [2, 1, 0]
    assert per.predicted.tolist() == [2, 2, 0]
