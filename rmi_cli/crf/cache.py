"""Per-image CRF results on disk, so that a stopped `run_crf` resumes where it stopped.

Layout: `<probs_dir>/crf-cache/<key>/<image name>.npz`, one file per image holding its CRF labels,
its per-count confusion matrix, boundary IoU counts and CRF times (an entry written before the
boundary counts existed lacks them and is computed again). The key hashes everything that
decides those numbers except the probabilities themselves (dataset, split, CRF parameters); each
entry records the size and mtime of the probabilities file it was computed from and is ignored
once that file changes. Living inside the probabilities folder, the cache goes away with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rmi_cli.config import CRFConfig, DataConfig
from rmi_cli.run_folder import crf_cache, file_stem


@dataclass(frozen=True)
class ImageResult:
    """One image's CRF outcome at each iteration count (aligned with `iterations`)."""

    index: int  # position in index.json
    name: str
    iterations: tuple[int, ...]
    confusion: np.ndarray  # (K, C, C) int64, rows ground truth, columns CRF labels
    boundary: np.ndarray  # (K, 2, C) int64, |G_d∩P_d| and |G_d∪P_d| per class
    seconds: np.ndarray  # (K,) float64, cumulative CRF time per count


def probs_stamp(path: Path) -> np.ndarray:
    """What identifies one version of a probabilities file: its size and mtime (ns)."""
    stat = path.stat()
    return np.array([stat.st_size, stat.st_mtime_ns], dtype=np.int64)


@dataclass(frozen=True)
class CRFCache:
    """The cache folder of one (dataset split, CRF parameters) pair under a probabilities dir."""

    folder: Path

    @classmethod
    def for_run(
        cls, probs_dir: Path, *, data_cfg: DataConfig, split: str, params: CRFConfig
    ) -> CRFCache:
        settings = {
            "dataset": data_cfg.name,
            "root": data_cfg.resolved_root(),
            "synthetic": data_cfg.synthetic.model_dump(mode="json"),
            "split": split,
            # Iteration counts are per entry, so CRF-20 later reuses nothing but hurts nothing.
            "crf": params.model_dump(mode="json", exclude={"iters"}),
        }
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        key = hashlib.sha256(text.encode()).hexdigest()[:16]
        return cls(crf_cache(Path(probs_dir), key))

    def entry(self, name: str) -> Path:
        return self.folder / f"{file_stem(name)}.npz"

    def load(
        self, index: int, name: str, iterations: Sequence[int], stamp: np.ndarray
    ) -> ImageResult | None:
        """The cached result for these counts, or None (absent, stale, partial or unreadable)."""
        try:
            with np.load(self.entry(name)) as entry:
                if not np.array_equal(entry["stamp"], stamp):
                    return None
                cached = [int(n) for n in entry["iterations"]]
                if not set(iterations) <= set(cached):
                    return None
                rows = [cached.index(n) for n in iterations]
                confusion, seconds = entry["confusion"][rows], entry["seconds"][rows]
                boundary = entry["boundary"][rows]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None
        return ImageResult(index, name, tuple(iterations), confusion, boundary, seconds)

    def labels(self, name: str) -> dict[int, np.ndarray]:
        """The cached CRF labels of one image, {iteration count: (H, W) uint8}."""
        with np.load(self.entry(name)) as entry:
            return dict(zip((int(n) for n in entry["iterations"]), entry["labels"], strict=True))

    def store(self, result: ImageResult, labels: np.ndarray, stamp: np.ndarray) -> None:
        """Write one entry atomically (temporary file + rename); `labels` is (K, H, W) uint8.

        No fsync: after a crash an entry is either whole or unreadable, and an unreadable one is
        simply computed again.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(
            dir=self.folder, prefix=f".{file_stem(result.name)}.", suffix=".tmp"
        )
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez_compressed(
                    stream,
                    iterations=np.array(result.iterations, dtype=np.int64),
                    labels=labels,
                    confusion=result.confusion,
                    boundary=result.boundary,
                    seconds=result.seconds,
                    stamp=stamp,
                )
            Path(temp).replace(self.entry(result.name))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(temp).unlink()
            raise
