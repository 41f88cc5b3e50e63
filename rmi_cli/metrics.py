"""Segmentation metrics: a confusion-matrix accumulator (torch) and scores from it (NumPy).

Rows of every confusion matrix are the ground truth, columns the prediction. Pixels labelled
`IGNORE_INDEX` or any value >= the number of classes are not counted (recipe section 1.1).
`scores_from_confusion` is NumPy only, so the CRF step can score its own confusion matrices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.errors import DataError
from rmi_cli.records import SegmentationScores


class ConfusionMatrix:
    """Accumulates a (C, C) int64 confusion matrix on the labels' device."""

    def __init__(self, num_classes: int, *, device: torch.device | str = "cpu") -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1; found {num_classes}")
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, labels: torch.Tensor, predictions: torch.Tensor) -> None:
        """Add one batch: `labels` and `predictions` integer tensors of the same shape."""
        if labels.shape != predictions.shape:
            raise ValueError(
                f"labels {tuple(labels.shape)} and predictions {tuple(predictions.shape)} "
                f"must have the same shape"
            )
        labels = labels.reshape(-1).to(device=self.matrix.device, dtype=torch.int64)
        predictions = predictions.reshape(-1).to(device=self.matrix.device, dtype=torch.int64)
        # Labels >= C cover the ignore index (255) and any stray value alike.
        valid = (labels >= 0) & (labels < self.num_classes)
        codes = labels[valid] * self.num_classes + predictions[valid]
        counts = torch.bincount(codes, minlength=self.num_classes**2)
        self.matrix += counts[: self.num_classes**2].reshape(self.num_classes, self.num_classes)

    def reset(self) -> None:
        self.matrix.zero_()

    def numpy(self) -> np.ndarray:
        """The accumulated matrix as an int64 NumPy array (one device sync)."""
        return self.matrix.cpu().numpy().astype(np.int64)


def require_labelled(confusion: np.ndarray, what: str) -> None:
    """A `DataError` when `confusion` counts no pixel: every label of `what` is void or outside
    the classes, and an mIoU of NaN would fail every attempt to store it."""
    if int(np.asarray(confusion).sum()) == 0:
        raise DataError(
            f"{what} has no labelled pixel (every label is the void value {IGNORE_INDEX} or "
            f"outside the classes): there is nothing to score; label some pixels or evaluate "
            f"another split (data.eval_split)"
        )


def scores_from_confusion(confusion: np.ndarray, class_names: Sequence[str]) -> SegmentationScores:
    """Per-class IoU, mIoU, pixel accuracy and mean accuracy of one confusion matrix.

    A class with zero union (never labelled, never predicted) has IoU None and is left out of
    the mIoU; `SegmentationScores.excluded_classes` names those classes. Mean accuracy averages
    over the classes that occur in the ground truth. With no labelled pixel at all the summary
    numbers are NaN: there is nothing to score.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    num_classes = len(class_names)
    if confusion.shape != (num_classes, num_classes):
        raise ValueError(
            f"confusion matrix of shape {confusion.shape} does not match {num_classes} class names"
        )
    true_positive = np.diag(confusion).astype(np.float64)
    labelled = confusion.sum(axis=1).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    union = labelled + predicted - true_positive
    iou = tuple(
        float(tp / u) if u > 0 else None for tp, u in zip(true_positive, union, strict=True)
    )
    present = [value for value in iou if value is not None]
    total = labelled.sum()
    accuracies = [tp / n for tp, n in zip(true_positive, labelled, strict=True) if n > 0]
    return SegmentationScores(
        class_names=tuple(class_names),
        iou=iou,
        miou=float(np.mean(present)) if present else math.nan,
        pixel_accuracy=float(true_positive.sum() / total) if total > 0 else math.nan,
        mean_accuracy=float(np.mean(accuracies)) if accuracies else math.nan,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
    )
