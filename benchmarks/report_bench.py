"""What the statistics and the report cost: the paired bootstrap per table row, boundary IoU
counts per image, and the per-image counts' size in the database.

Shapes of the paper's settings: VOC val (1,449 images, 21 classes, 1 seed, up to 500x500) and
CamVid test (233 images, 11 classes, 3 seeds, 360x480). Counts are random (the cost does not
depend on their values); the boundary band is computed on the CPU.

    python benchmarks/report_bench.py --repeats 5
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
import zlib

import numpy as np
import torch

from rmi_cli.constants import BOUNDARY_FRACTION
from rmi_cli.metrics import boundary_counts, boundary_width
from rmi_cli.report.bootstrap import RESAMPLES, Evidence, paired_difference

SETTINGS = {  # name: (seeds, images, classes, height, width)
    "VOC val": (1, 1449, 21, 500, 500),
    "CamVid test": (3, 233, 11, 360, 480),
}


def timed(work: object, repeats: int) -> float:
    """Median seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def counts(rng: np.random.Generator, seeds: int, images: int, classes: int) -> np.ndarray:
    """(S, N, C) unions of a sparse scene: each image holds a few classes."""
    present = rng.random((seeds, images, classes)) < 3.0 / classes
    return rng.integers(100, 50_000, size=(seeds, images, classes)) * present


def bootstrap_row(name: str, repeats: int) -> str:
    seeds, images, classes, _, _ = SETTINGS[name]
    rng = np.random.default_rng(0)
    union = counts(rng, seeds, images, classes)
    a = Evidence((union * 0.7).astype(np.int64), union, tuple(range(seeds)))
    b = Evidence((union * 0.6).astype(np.int64), union, tuple(range(seeds)))
    seconds = timed(lambda: paired_difference(a, b), repeats)
    inter = a.intersection[0]
    stored = np.stack([inter, union[0], inter // 3, union[0] // 3], axis=1)  # (N, 4, C)
    size = len(zlib.compress(stored.astype("<i8").tobytes(), 6))  # as rmi_cli.db.evidence
    return f"| {name} | {seeds} x {images} x {classes} | {1e3 * seconds:.0f} | {size / 1024:.0f} |"


def boundary_row(name: str, repeats: int) -> str:
    _, _, classes, height, width = SETTINGS[name]
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, classes, size=(height // 20 + 1, width // 20 + 1))
    label = torch.from_numpy(np.kron(coarse, np.ones((20, 20), np.int64))[:height, :width])
    prediction = label.roll(3, dims=1)
    d = boundary_width(height, width, BOUNDARY_FRACTION)
    seconds = timed(lambda: boundary_counts(label, prediction, classes, d), repeats)
    return f"| {name} | {height}x{width} | {d} | {1e3 * seconds:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, numpy {np.__version__}, 1 thread")  # fmt: skip
    print(f"\nPaired bootstrap, {RESAMPLES} resamples, one table row:\n")
    print("| setting | seeds x images x classes | ms per row | counts blob (KiB, 1 seed) |")
    print("|---|---|---:|---:|")
    for name in SETTINGS:
        print(bootstrap_row(name, args.repeats))
    print("\nBoundary IoU counts of one image (CPU, one thread):\n")
    print("| setting | image | d (px) | ms per image |")
    print("|---|---|---:|---:|")
    for name in SETTINGS:
        print(boundary_row(name, args.repeats))


if __name__ == "__main__":
    main()
