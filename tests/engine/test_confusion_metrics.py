"""ConfusionMatrix and scores_from_confusion against a hand-computed example."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.errors import DataError
from rmi_cli.metrics import ConfusionMatrix, require_labelled, scores_from_confusion

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


def test_a_split_without_a_labelled_pixel_is_a_data_error() -> None:
    """Its mIoU would be NaN, which the database refuses: the job failed three times with
    "miou must be a fraction in [0, 1]; got nan" instead of saying what was wrong."""
    confusion = ConfusionMatrix(3)
    confusion.update(torch.full((4, 4), IGNORE_INDEX), torch.zeros(4, 4, dtype=torch.int64))
    with pytest.raises(DataError, match=r"^split 'val' has no labelled pixel \(every label is"):
        require_labelled(confusion.numpy(), "split 'val'")
    confusion.update(torch.tensor([1]), torch.tensor([1]))
    require_labelled(confusion.numpy(), "split 'val'")
