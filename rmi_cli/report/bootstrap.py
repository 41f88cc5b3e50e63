"""Bootstrap confidence intervals of mIoU and of mIoU differences, from per-image counts.

NumPy only. An evaluation's evidence is its per-image, per-class intersection and union counts;
a method's evidence is a stack of them over seeds, (S, N, C), the same N images in the same order
for every seed and every method compared.

One resample (hierarchical when there are several seeds):

1. draw N images with replacement (multinomial weights); the same draw for both methods and for
   every seed, so the comparison is paired by image;
2. draw S seeds with replacement; paired by seed (the same draw for both methods) when the two
   methods have the same seeds, independently otherwise;
3. each drawn seed's mIoU is recomputed from the counts summed over the drawn images (the IoU of
   a class is its summed intersection over its summed union, classes without a union left out,
   `rmi_cli.iou.mean_iou`), and averaged over the drawn seeds, as the tables average seeds.

The interval is the percentile interval of the resampled values (or of their differences). With
one seed, step 2 does nothing and this is the plain paired image bootstrap. Resampling seeds as
well as images counts the seed-to-seed variation of training in the interval instead of treating
the seeds at hand as the only possible ones (a two-level bootstrap; with 3 seeds it is coarse,
which the interval shows by being wide). Identical evidence gives exactly [0, 0].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rmi_cli.iou import mean_iou

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0  # the generator's seed: the same inputs always give the same interval
_CHUNK = 500  # resamples per block, bounding memory at (CHUNK, N) weights


@dataclass(frozen=True)
class Evidence:
    """One method's counts: `intersection` and `union`, each (S, N, C), and its seeds."""

    intersection: np.ndarray
    union: np.ndarray
    seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.intersection.ndim != 3 or self.intersection.shape != self.union.shape:
            raise ValueError(
                f"evidence must be two (seeds, images, classes) arrays of one shape; got "
                f"{self.intersection.shape} and {self.union.shape}"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        s, n, c = self.intersection.shape
        return s, n, c


@dataclass(frozen=True)
class Interval:
    """A percentile interval, in the units of the inputs' mIoU (fractions)."""

    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def paired_difference(
    a: Evidence,
    b: Evidence,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> Interval:
    """Interval of mIoU(a) - mIoU(b) (seed means), images resampled jointly (see the module)."""
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"paired evidence needs the same images and classes: {a.shape} vs {b.shape}"
        )
    rng = np.random.default_rng(seed)
    paired_seeds = a.shape[0] == b.shape[0] and (not a.seeds or a.seeds == b.seeds)
    draws = []
    for size in _chunks(resamples):
        weights = _image_weights(rng, a.shape[1], size)
        seeds_a = _seed_draws(rng, a.shape[0], size)
        seeds_b = seeds_a if paired_seeds else _seed_draws(rng, b.shape[0], size)
        draws.append(_seed_mean(a, weights, seeds_a) - _seed_mean(b, weights, seeds_b))
    return _percentiles(np.concatenate(draws), level)


def interval(
    evidence: Evidence,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
) -> Interval:
    """Interval of one method's (seed-mean) mIoU, resampling images and seeds."""
    rng = np.random.default_rng(seed)
    draws = []
    for size in _chunks(resamples):
        weights = _image_weights(rng, evidence.shape[1], size)
        draws.append(_seed_mean(evidence, weights, _seed_draws(rng, evidence.shape[0], size)))
    return _percentiles(np.concatenate(draws), level)


def point_miou(evidence: Evidence) -> float:
    """The seed-mean mIoU of all images: what the intervals are around."""
    return float(np.mean(mean_iou(evidence.intersection.sum(1), evidence.union.sum(1))))


def _chunks(resamples: int) -> list[int]:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1; got {resamples}")
    full, rest = divmod(resamples, _CHUNK)
    return [_CHUNK] * full + ([rest] if rest else [])


def _image_weights(rng: np.random.Generator, images: int, resamples: int) -> np.ndarray:
    """(B, N) float64: how often each image is drawn in each resample (each row sums to N)."""
    if images < 1:
        raise ValueError("a bootstrap needs at least one image")
    drawn = rng.integers(0, images, size=(resamples, images))  # N draws with replacement each
    # one bincount for all rows: row b's draws are offset by b*N (multinomial is 20x slower)
    offsets = drawn + images * np.arange(resamples)[:, None]
    counts = np.bincount(offsets.ravel(), minlength=resamples * images)
    return counts.reshape(resamples, images).astype(np.float64)


def _seed_draws(rng: np.random.Generator, seeds: int, resamples: int) -> np.ndarray:
    """(B, S) indices of the seeds drawn in each resample (all seeds, in order, for one)."""
    if seeds == 1:
        return np.zeros((resamples, 1), dtype=np.int64)
    return rng.integers(0, seeds, size=(resamples, seeds))


def _seed_mean(evidence: Evidence, weights: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(B,) the mean over each resample's drawn seeds of that seed's mIoU on its images."""
    s, n, c = evidence.shape
    # (B, N) @ (N, S*C): counts summed over the drawn images, exact in float64 below 2**53
    inter = (weights @ evidence.intersection.transpose(1, 0, 2).reshape(n, s * c)).reshape(-1, s, c)
    union = (weights @ evidence.union.transpose(1, 0, 2).reshape(n, s * c)).reshape(-1, s, c)
    per_seed = mean_iou(inter, union)  # (B, S)
    return np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)


def _percentiles(draws: np.ndarray, level: float) -> Interval:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    tail = (1.0 - level) / 2.0
    low, high = np.nanquantile(draws, [tail, 1.0 - tail])
    return Interval(float(low), float(high))
