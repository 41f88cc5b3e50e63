"""ConfusionMatrix and scores_from_confusion against a hand-computed example."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.metrics import ConfusionMatrix, scores_from_confusion

NAMES = ("sky", "road", "car", "pole")


def test_confusion_counts_ignore_void_and_out_of_range_labels() -> None:
    labels = torch.tensor([[0, 0, 1, 1], [2, IGNORE_INDEX, 7, 1]])
    predictions = torch.tensor([[0, 1, 1, 1], [0, 2, 3, 2]])
    matrix = ConfusionMatrix(4)
    matrix.update(labels, predictions)
    expected = np.zeros((4, 4), dtype=np.int64)
    # (label, prediction) pairs of the six counted pixels; 255 and 7 are not counted.
    for gt, pred in [(0, 0), (0, 1), (1, 1), (1, 1), (2, 0), (1, 2)]:
        expected[gt, pred] += 1
    np.testing.assert_array_equal(matrix.numpy(), expected)
    matrix.update(labels, predictions)
    np.testing.assert_array_equal(matrix.numpy(), 2 * expected)


def test_confusion_rejects_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        ConfusionMatrix(3).update(torch.zeros(2, 2), torch.zeros(4))


def test_scores_by_hand_with_a_zero_union_class() -> None:
    confusion = np.array(
        [
            [5, 1, 0, 0],  # sky: 6 labelled
            [2, 3, 1, 0],  # road: 6 labelled
            [0, 0, 4, 0],  # car: 4 labelled
            [0, 0, 0, 0],  # pole: never labelled, never predicted
        ]
    )
    scores = scores_from_confusion(confusion, NAMES)
    sky, road, car = 5 / (6 + 7 - 5), 3 / (6 + 4 - 3), 4 / (4 + 5 - 4)
    assert scores.iou[:3] == pytest.approx((sky, road, car), rel=1e-12)
    assert scores.iou[3] is None
    assert scores.excluded_classes == ("pole",)
    assert scores.miou == pytest.approx((sky + road + car) / 3, rel=1e-12)
    assert scores.pixel_accuracy == pytest.approx(12 / 16, rel=1e-12)
    assert scores.mean_accuracy == pytest.approx((5 / 6 + 3 / 6 + 4 / 4) / 3, rel=1e-12)
    assert scores.class_names == NAMES
    assert scores.confusion[1] == (2, 3, 1, 0)


def test_a_class_only_predicted_has_iou_zero_not_none() -> None:
    confusion = np.array([[3, 1], [0, 0]])
    scores = scores_from_confusion(confusion, ("a", "b"))
    assert scores.iou == (0.75, 0.0)
    assert scores.excluded_classes == ()
    assert scores.mean_accuracy == 0.75


def test_empty_confusion_scores_nan() -> None:
    scores = scores_from_confusion(np.zeros((2, 2), dtype=np.int64), ("a", "b"))
    assert scores.excluded_classes == ("a", "b")
    assert math.isnan(scores.miou) and math.isnan(scores.pixel_accuracy)


def test_class_names_must_match_the_matrix() -> None:
    with pytest.raises(ValueError, match="3 class names"):
        scores_from_confusion(np.zeros((2, 2)), ("a", "b", "c"))


def test_void_scored_as_a_twelfth_class_and_the_eleven_class_mean() -> None:
    """CamVid with data.void: class: label 11 ("unlabelled") is counted and scored, only 255 is
    ignored; the 11-class mean comes from the same 12-class confusion."""
    from rmi_cli.report.frames import named_mean

    names = (*(f"c{i}" for i in range(11)), "unlabelled")
    # every class i labelled on 3 pixels: 2 predicted right, 1 predicted as (i + 1) % 12;
    # 4 void (255) pixels predicted as anything are not counted
    labels = [i for i in range(12) for _ in range(3)] + [IGNORE_INDEX] * 4
    predictions = [p for i in range(12) for p in (i, i, (i + 1) % 12)] + [11, 11, 0, 3]
    matrix = ConfusionMatrix(12)
    matrix.update(torch.tensor(labels), torch.tensor(predictions))
    expected = np.zeros((12, 12), dtype=np.int64)
    for i in range(12):
        expected[i, i], expected[i, (i + 1) % 12] = 2, 1
    np.testing.assert_array_equal(matrix.numpy(), expected)
    # make "unlabelled" worse: 3 more of its pixels predicted as class 0
    matrix.update(torch.tensor([11, 11, 11]), torch.tensor([0, 0, 0]))
    confusion = matrix.numpy()
    scores = scores_from_confusion(confusion, names)
    # by hand: each named class i: TP 2, row 3, column 3 (+3 for class 0) -> 2/4 (0: 2/7)
    named = [2 / 7] + [2 / 4] * 10
    void = 2 / (6 + 3 - 2)  # TP 2, labelled 6, predicted 3
    assert scores.iou == pytest.approx((*named, void), abs=1e-12)
    assert scores.miou == pytest.approx(math.fsum([*named, void]) / 12, abs=1e-12)
    class_iou = dict(zip(scores.class_names, scores.iou, strict=True))
    assert named_mean(class_iou) == pytest.approx(100 * math.fsum(named) / 11, abs=1e-10)
    assert scores.named_miou == pytest.approx(math.fsum(named) / 11, abs=1e-12)
    # without the void class among the names there is no separate named mean
    assert math.isnan(named_mean(dict(zip(names[:11], named, strict=True))))
