"""The paired bootstrap against known answers: coverage of a known difference, exact zeros,
exact seed ranges, and reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from rmi_cli.iou import mean_iou
from rmi_cli.report.bootstrap import Evidence, interval, paired_difference, point_miou

CLASSES = 4


def population(images: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Per-image counts (N, C) of two correlated methods: the same class areas, the same
    per-image difficulty, method A a little better on average (but not on every image)."""
    present = rng.random((images, CLASSES)) < np.array([0.9, 0.6, 0.35, 0.2])
    area = rng.integers(50, 3000, size=(images, CLASSES)) * present
    difficulty = rng.beta(4, 2, size=(images, 1))  # shared by both methods
    quality_a = np.clip(difficulty + rng.normal(0.03, 0.08, (images, CLASSES)), 0.01, 1)
    quality_b = np.clip(difficulty + rng.normal(0.0, 0.08, (images, CLASSES)), 0.01, 1)
    counts = []
    for quality in (quality_a, quality_b):
        inter = rng.binomial(area, quality)
        false_positive = rng.binomial(area, 0.15)
        counts += [inter, area + false_positive]  # union = |G| + |P \ G|
    return tuple(counts)


def evidence(inter: np.ndarray, union: np.ndarray) -> Evidence:
    return Evidence(inter[None], union[None])


def test_the_interval_covers_a_known_difference_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2024)
    inter_a, union_a, inter_b, union_b = population(20_000, rng)
    truth = float(
        mean_iou(inter_a.sum(0), union_a.sum(0)) - mean_iou(inter_b.sum(0), union_b.sum(0))
    )
    assert 0.005 < truth < 0.05  # a small true gain, as between two losses
    draws, images = 300, 120
    covered, paired_widths, unpaired_widths = 0, [], []
    for draw in range(draws):
        pick = rng.integers(0, len(inter_a), images)  # a test set drawn from the population
        a, b = evidence(inter_a[pick], union_a[pick]), evidence(inter_b[pick], union_b[pick])
        found = paired_difference(a, b, resamples=400, seed=draw)
        covered += truth in found
        paired_widths.append(found.high - found.low)
        # the power check: two intervals from independent resamples ignore the pairing
        ia, ib = interval(a, resamples=400, seed=draw), interval(b, resamples=400, seed=draw + 1)
        unpaired_widths.append(np.hypot(ia.high - ia.low, ib.high - ib.low))
    coverage = covered / draws
    assert 0.91 <= coverage <= 0.985, coverage
    # pairing by image removes the shared difficulty: much narrower than unpaired
    assert np.mean(paired_widths) < 0.6 * np.mean(unpaired_widths)


@pytest.mark.parametrize("seeds", [1, 3])
def test_an_identical_pair_gives_exactly_zero(seeds: int) -> None:
    rng = np.random.default_rng(1)
    inter, union, _, _ = population(50, rng)
    stacked = Evidence(np.stack([inter] * seeds), np.stack([union] * seeds), tuple(range(seeds)))
    same = Evidence(stacked.intersection.copy(), stacked.union.copy(), stacked.seeds)
    found = paired_difference(stacked, same)
    assert (found.low, found.high) == (0.0, 0.0)


def test_identical_images_leave_only_the_seed_spread() -> None:
    # every image is the same, so image resamples change nothing; the seeds' differences are
    # 1, 2 and 3 points, and resampling 3 seeds puts the 2.5% and 97.5% points at the extremes
    # (all-lowest and all-highest draws each happen 1/27 > 2.5% of the time)
    images = 30
    union = np.full((3, images, 2), 100)
    inter_b = np.full((3, images, 2), 50)
    inter_a = inter_b + np.array([1, 2, 3])[:, None, None]
    found = paired_difference(
        Evidence(inter_a, union, (0, 1, 2)), Evidence(inter_b, union, (0, 1, 2)), seed=5
    )
    assert found.low == pytest.approx(0.01) and found.high == pytest.approx(0.03)


def test_seeded_and_reproducible_and_sensitive_to_the_seed() -> None:
    rng = np.random.default_rng(3)
    inter_a, union_a, inter_b, union_b = population(80, rng)
    a, b = evidence(inter_a, union_a), evidence(inter_b, union_b)
    first = paired_difference(a, b)
    assert paired_difference(a, b) == first
    assert paired_difference(a, b, seed=1) != first
    assert first.low < point_miou(a) - point_miou(b) < first.high


def test_a_class_absent_from_a_resample_is_left_out_of_its_mean() -> None:
    # image 0: class 0 at IoU 0.5, class 1 absent; image 1: 0.5 and 0.8. A resample of image 0
    # twice (1 in 4) has mIoU 0.5 (not 0.25: the absent class is left out), any other 0.65
    inter = np.array([[[10, 0], [10, 8]]])  # (S=1, N=2, C=2)
    union = np.array([[[20, 0], [20, 10]]])
    found = interval(Evidence(inter, union), resamples=400)
    assert (found.low, found.high) == pytest.approx((0.5, 0.65))


def test_mismatched_evidence_is_refused() -> None:
    a = Evidence(np.zeros((1, 5, 3)), np.ones((1, 5, 3)))
    b = Evidence(np.zeros((1, 4, 3)), np.ones((1, 4, 3)))
    with pytest.raises(ValueError, match="same images and classes"):
        paired_difference(a, b)
