"""Which images a qualitative figure shows: the first N, or those where one method gains most
on another and those where it loses most (failures are shown too), from stored per-image counts.
"""

from __future__ import annotations

import math

import numpy as np

from rmi_cli.iou import mean_iou
from rmi_cli.records import ImageCounts, IoUMetric

PICKS = ("first", "biggest-gain")


def per_image_miou(counts: ImageCounts, metric: IoUMetric = "miou") -> np.ndarray:
    """(N,) each image's own mIoU in % (over the classes present in its truth or prediction;
    NaN for an image without labelled pixels)."""
    inter, union = counts.pair(metric)
    return 100.0 * mean_iou(inter, union)


def biggest_gain(first: ImageCounts, second: ImageCounts, n: int) -> list[tuple[str, float]]:
    """(name, gain) of the ceil(n/2) images where `second`'s per-image mIoU exceeds `first`'s
    most, then the floor(n/2) where it falls most short, without repeats; gain in points."""
    if set(first.names) != set(second.names):
        raise ValueError("the two evaluations scored different images; compare runs on one split")
    position = {name: i for i, name in enumerate(second.names)}
    order = [position[name] for name in first.names]
    gain = per_image_miou(second)[order] - per_image_miou(first)
    ranked = [int(i) for i in np.argsort(-np.nan_to_num(gain, nan=-np.inf), kind="stable")]
    ranked = [i for i in ranked if not math.isnan(gain[i])]
    best = ranked[: math.ceil(n / 2)]
    worst = [i for i in reversed(ranked) if i not in best][: n // 2]
    return [(first.names[i], float(gain[i])) for i in best + worst]


def first_images(names: tuple[str, ...], n: int) -> list[str]:
    return list(names[:n])
