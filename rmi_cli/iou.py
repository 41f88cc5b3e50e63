"""IoU from pixel counts, vectorised (NumPy only: the metrics, the CRF and the report's bootstrap
all score summed counts with this one definition).

A class's IoU is intersection / union; a class with zero union (never labelled and never
predicted among the counted pixels) has no IoU and is left out of the mean, so the mean is over
the classes that occur. With no such class at all the mean is NaN: there is nothing to score.
"""

from __future__ import annotations

import numpy as np


def class_iou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """(..., C) float64 IoU per class; NaN where the union is zero."""
    intersection = np.asarray(intersection, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), np.nan)


def mean_iou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """(...,) float64: the mean IoU over the last axis's classes that have a union (NaN when
    none has). `intersection` and `union` are counts summed over the images scored."""
    iou = class_iou(intersection, union)
    present = ~np.isnan(iou)
    count = present.sum(axis=-1)
    total = np.where(present, iou, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def confusion_counts(confusion: np.ndarray) -> np.ndarray:
    """(..., 2, C) int64 from (..., C, C) confusion matrices (rows ground truth): per class
    |G∩P| (the diagonal) and |G∪P| (row sum + column sum - diagonal)."""
    confusion = np.asarray(confusion, dtype=np.int64)
    inter = np.diagonal(confusion, axis1=-2, axis2=-1)
    union = confusion.sum(axis=-1) + confusion.sum(axis=-2) - inter
    return np.stack([inter, union], axis=-2)
