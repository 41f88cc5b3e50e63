"""Segmentation metrics: a confusion-matrix accumulator, per-image counts (torch), and scores
from summed counts (NumPy).

Rows of every confusion matrix are the ground truth, columns the prediction. Pixels labelled
`IGNORE_INDEX` or any value >= the number of classes are not counted (recipe section 1.1).
`scores_from_confusion` is NumPy only, so the CRF step can score its own confusion matrices.

Boundary IoU (Cheng et al., "Boundary IoU: Improving Object-Centric Image Segmentation
Evaluation", CVPR 2021): per class c, G_d = G_c ∩ band(G_c) and P_d = P_c ∩ band(P_c), where the
band of a mask is its pixels within distance d of a pixel outside it (the image's outside counts
as outside, as their zero-padded erosion does; distance is the chessboard distance of d
iterations of a 3x3 erosion); IoU_c = |G_d ∩ P_d| / |G_d ∪ P_d| summed over the images, d =
max(1, round(fraction x image diagonal)). Void pixels are outside every class's ground-truth mask
(so an object's edge against void is an edge) and are not counted, as for the IoU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.errors import DataError
from rmi_cli.iou import class_iou, mean_iou
from rmi_cli.records import SegmentationScores


class ConfusionMatrix:
    """Accumulates a (C, C) int64 confusion matrix on the labels' device."""

    def __init__(self, num_classes: int, *, device: torch.device | str = "cpu") -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1; found {num_classes}")
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, labels: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
        """Add one batch: `labels` and `predictions` integer tensors of the same shape.
        Returns the batch's own (C, C) matrix."""
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
        batch = counts[: self.num_classes**2].reshape(self.num_classes, self.num_classes)
        self.matrix += batch
        return batch

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


def boundary_width(height: int, width: int, fraction: float) -> int:
    """The band width d in pixels: `fraction` of the image diagonal, rounded, at least 1."""
    return max(1, round(fraction * math.hypot(height, width)))


def boundary_band(label_map: torch.Tensor, width: int) -> torch.Tensor:
    """(H, W) bool: pixels within chessboard distance `width` of a pixel with another value or
    of the image's edge. For a pixel of class c that is exactly band(G_c) of Cheng et al. (its
    window is not all c), so one label map gives every class's band at once.

    Computed as the edge pixels (an 8-neighbour differs, or lies outside the image) dilated by
    `width - 1`: a window of radius d holds another value iff an edge pixel lies within d - 1
    (walk from the centre towards that value: the last pixel before it is an edge pixel). The
    dilation is a box sum over an integral image, so the cost does not grow with d.
    """
    height, width_px = label_map.shape
    padded = F.pad(label_map.to(torch.int32)[None, None], (1, 1, 1, 1), value=-1)[0, 0]
    centre = padded[1:-1, 1:-1]
    edge = torch.zeros_like(centre, dtype=torch.bool)
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        edge |= padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width_px] != centre
    reach = width - 1
    if reach == 0:
        return edge
    integral = F.pad(edge.to(torch.int32).cumsum(0).cumsum(1), (1, 0, 1, 0))  # (H+1, W+1)
    rows = torch.arange(height, device=label_map.device)
    cols = torch.arange(width_px, device=label_map.device)
    top, bottom = (rows - reach).clamp(min=0), (rows + reach + 1).clamp(max=height)
    left, right = (cols - reach).clamp(min=0), (cols + reach + 1).clamp(max=width_px)
    lower, upper = integral.index_select(0, bottom), integral.index_select(0, top)
    box = (
        lower.index_select(1, right)
        - upper.index_select(1, right)
        - lower.index_select(1, left)
        + upper.index_select(1, left)
    )
    return box > 0


def boundary_counts(
    labels: torch.Tensor, predictions: torch.Tensor, num_classes: int, width: int
) -> torch.Tensor:
    """(2, C) int64: per class |G_d∩P_d| and |G_d∪P_d| of one image's (H, W) label and
    prediction maps, counted over labelled pixels (void and labels >= C left out)."""
    labels, predictions = labels.to(torch.int64), predictions.to(torch.int64)
    valid = (labels >= 0) & (labels < num_classes)
    in_truth = valid & boundary_band(labels, width)  # pixel in G_d of its label's class
    in_prediction = valid & boundary_band(predictions, width)  # in P_d of its predicted class
    both = in_truth & in_prediction & (labels == predictions)

    def count(classes: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        # pixels left out go to an extra bin: cheaper than compacting with a boolean index
        binned = torch.where(where, classes, num_classes).flatten()
        return torch.bincount(binned, minlength=num_classes + 1)[:num_classes]

    inter = count(labels, both)
    return torch.stack([inter, count(labels, in_truth) + count(predictions, in_prediction) - inter])


def iou_from_counts(
    intersection: np.ndarray, union: np.ndarray
) -> tuple[tuple[float | None, ...], float]:
    """Per-class IoU (None: zero union) and their mean over classes with a union, from counts
    summed over images (C,); the mean is NaN when no class has a union."""
    per_class = class_iou(intersection, union)
    iou = tuple(None if math.isnan(v) else float(v) for v in per_class)
    return iou, float(mean_iou(intersection, union))


def scores_from_confusion(
    confusion: np.ndarray,
    class_names: Sequence[str],
    *,
    boundary: np.ndarray | None = None,
) -> SegmentationScores:
    """Per-class IoU, mIoU, pixel accuracy and mean accuracy of one confusion matrix.

    A class with zero union (never labelled, never predicted) has IoU None and is left out of
    the mIoU; `SegmentationScores.excluded_classes` names those classes. Mean accuracy averages
    over the classes that occur in the ground truth. With no labelled pixel at all the summary
    numbers are NaN: there is nothing to score. `boundary` (2, C): the boundary counts summed
    over the images (rows |G_d∩P_d|, |G_d∪P_d|), which add the boundary IoU.
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
    iou, miou = iou_from_counts(true_positive, labelled + predicted - true_positive)
    total = labelled.sum()
    accuracies = [tp / n for tp, n in zip(true_positive, labelled, strict=True) if n > 0]
    boundary_iou, boundary_miou = (
        (None, None) if boundary is None else iou_from_counts(boundary[0], boundary[1])
    )
    return SegmentationScores(
        class_names=tuple(class_names),
        iou=iou,
        miou=miou,
        pixel_accuracy=float(true_positive.sum() / total) if total > 0 else math.nan,
        mean_accuracy=float(np.mean(accuracies)) if accuracies else math.nan,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        boundary_iou=boundary_iou,
        boundary_miou=boundary_miou,
    )
