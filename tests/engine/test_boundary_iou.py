"""Boundary IoU (Cheng et al., CVPR 2021) on hand-made masks, and against their definition.

The reference below follows the authors' `mask_to_boundary` literally: per class, pad the mask
with one row/column of zeros, erode it d times with a 3x3 square, and keep the pixels the
erosion removed; then |G_d ∩ P_d| / |G_d ∪ P_d| over labelled pixels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.iou import confusion_counts, mean_iou
from rmi_cli.metrics import (
    boundary_band,
    boundary_counts,
    boundary_width,
    scores_from_confusion,
)


def _erode_once(mask: np.ndarray) -> np.ndarray:
    # cv2.erode's default border leaves the outside of the padded image out of the minimum
    padded = np.pad(mask, 1, constant_values=True)
    windows = [
        padded[1 + dy : 1 + dy + mask.shape[0], 1 + dx : 1 + dx + mask.shape[1]]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]
    return np.logical_and.reduce(windows)


def reference_band(mask: np.ndarray, d: int) -> np.ndarray:
    """Cheng et al.'s mask_to_boundary: mask minus its d-fold eroded, zero-padded self."""
    padded = np.pad(mask, 1, constant_values=False)
    for _ in range(d):
        padded = _erode_once(padded)
    return mask & ~padded[1:-1, 1:-1]


def reference_counts(label: np.ndarray, pred: np.ndarray, classes: int, d: int) -> np.ndarray:
    valid = label < classes
    out = np.zeros((2, classes), dtype=np.int64)
    for c in range(classes):
        truth = reference_band(label == c, d) & valid
        predicted = reference_band(pred == c, d) & valid
        out[0, c] = np.sum(truth & predicted)
        out[1, c] = np.sum(truth | predicted)
    return out


def _counts(label: np.ndarray, pred: np.ndarray, classes: int, d: int) -> np.ndarray:
    return boundary_counts(torch.from_numpy(label), torch.from_numpy(pred), classes, d).numpy()


def test_two_halves_with_the_edge_moved_by_one_column_by_hand() -> None:
    # 10x10: ground truth class 0 in columns 0-4, class 1 in 5-9; prediction moves the edge to
    # 5|6. With d = 1 the bands are the image border plus the columns beside the edge:
    # G_d(0) = 26 px, P_d(0) = 28, overlap 18; G_d(1) = 26, P_d(1) = 24, overlap 16.
    label = np.zeros((10, 10), dtype=np.uint8)
    label[:, 5:] = 1
    pred = np.zeros((10, 10), dtype=np.uint8)
    pred[:, 6:] = 1
    counts = _counts(label, pred, 2, 1)
    np.testing.assert_array_equal(counts, [[18, 16], [36, 34]])
    np.testing.assert_array_equal(counts, reference_counts(label, pred, 2, 1))
    confusion = np.array([[50, 0], [10, 40]])
    scores = scores_from_confusion(confusion, ("a", "b"), boundary=counts)
    assert scores.boundary_iou == pytest.approx((0.5, 16 / 34))
    assert scores.boundary_miou == pytest.approx((0.5 + 16 / 34) / 2)
    assert scores.iou == pytest.approx((50 / 60, 40 / 50))  # the boundary IoU is the harsher one


def test_a_missed_one_pixel_wire_scores_zero_and_a_perfect_map_one() -> None:
    label = np.zeros((12, 16), dtype=np.uint8)
    label[6, 2:14] = 1  # a horizontal wire, 1 px thick
    pred = np.zeros_like(label)
    counts = _counts(label, pred, 2, 2)
    assert counts[0, 1] == 0 and counts[1, 1] == 12  # all of the wire is band, none predicted
    perfect = _counts(label, label.copy(), 2, 2)
    np.testing.assert_array_equal(perfect[0], perfect[1])  # intersection == union


def test_void_pixels_are_not_counted_but_their_edge_is_an_edge() -> None:
    label = np.zeros((9, 9), dtype=np.uint8)
    label[4, 4] = IGNORE_INDEX
    counts = _counts(label, np.zeros_like(label), 1, 1)
    # G_d: the 32 border pixels and the 8 around the void pixel (the void one is not counted);
    # the prediction (class 0 everywhere) has the border alone as its band
    np.testing.assert_array_equal(counts, [[32], [40]])
    np.testing.assert_array_equal(counts, reference_counts(label, np.zeros_like(label), 1, 1))


def test_one_class_everywhere_has_only_the_image_border_as_band() -> None:
    band = boundary_band(torch.zeros(7, 9, dtype=torch.uint8), 2).numpy()
    expected = np.ones((7, 9), dtype=bool)
    expected[2:-2, 2:-2] = False
    np.testing.assert_array_equal(band, expected)


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_matches_the_per_class_erosion_definition_on_random_maps(d: int) -> None:
    rng = np.random.default_rng(d)
    for _ in range(4):
        # blocky maps (upsampled noise) plus scattered single pixels and some void
        coarse = rng.integers(0, 5, size=(5, 6))
        label = np.kron(coarse, np.ones((6, 5), dtype=np.int64)).astype(np.uint8)
        label[rng.random(label.shape) < 0.03] = IGNORE_INDEX
        pred = label.copy()
        pred[rng.random(label.shape) < 0.1] = rng.integers(0, 5)
        pred[pred == IGNORE_INDEX] = 0
        np.testing.assert_array_equal(
            _counts(label, pred, 5, d), reference_counts(label, pred, 5, d)
        )


def test_band_width_is_two_percent_of_the_diagonal_and_at_least_one_pixel() -> None:
    assert boundary_width(96, 128, 0.02) == 3  # diagonal 160 -> 3.2
    assert boundary_width(360, 480, 0.02) == 12  # CamVid: diagonal 600
    assert boundary_width(10, 10, 0.02) == 1  # 0.28 rounds to 0: at least one pixel


def test_iou_counts_from_confusion_and_mean_over_present_classes() -> None:
    confusion = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    counts = confusion_counts(confusion)
    np.testing.assert_array_equal(counts, [[5, 3, 0], [8, 6, 0]])
    assert mean_iou(counts[0], counts[1]) == pytest.approx((5 / 8 + 3 / 6) / 2)
    assert math.isnan(float(mean_iou(np.zeros(3), np.zeros(3))))
