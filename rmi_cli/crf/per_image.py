"""One CRF worker: reads an image's probabilities and its RGB image and label, runs the CRF,
scores it and caches the outcome. The same class runs in the caller's process (one worker) and
in each process of the pool (`init_pool_worker` + `run_pool_task`).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rmi_cli.config import CRFConfig, DataConfig
from rmi_cli.constants import BOUNDARY_FRACTION
from rmi_cli.crf.cache import CRFCache, ImageResult, probs_stamp
from rmi_cli.crf.inference import crf_steps
from rmi_cli.errors import DataError
from rmi_cli.run_folder import probs_file, probs_index


@dataclass(frozen=True)
class CRFJob:
    """Everything a worker needs (pickled once per pool process)."""

    data_cfg: DataConfig
    split: str
    probs_dir: Path
    names: tuple[str, ...]  # index.json's order, which is the dataset's order
    class_names: tuple[str, ...]
    iterations: tuple[int, ...]
    params: CRFConfig
    cache: CRFCache


class CRFWorker:
    """Runs the CRF on images of one split, addressed by their position in the split."""

    def __init__(self, job: CRFJob) -> None:
        from rmi_cli.data import build_dataset

        self.job = job
        self.dataset = build_dataset(job.data_cfg, job.split)

    def __call__(self, index: int) -> ImageResult:
        job = self.job
        name = job.names[index]
        sample = self.dataset[index]
        if sample.name != name:
            raise DataError(
                f"{probs_index(job.probs_dir)} lists {name!r} as image {index} of split "
                f"{job.split!r}, but the dataset has {sample.name!r} there: the probabilities "
                f"belong to another dataset or split; save them again with `rmi eval`"
            )
        path = probs_file(job.probs_dir, name)
        stamp = probs_stamp(path)
        probs = _read_probs(path)  # (C, H, W) float32 (float16 from older runs)
        image = np.asarray(sample.image).transpose(1, 2, 0)  # (H, W, 3) uint8
        label = np.asarray(sample.label)  # (H, W) uint8, void 255
        _check_match(path, probs, image, sample.name, len(job.class_names))
        steps = crf_steps(probs, image, iterations=job.iterations, params=job.params)
        confusion = np.stack([confusion_matrix(label, s.labels, probs.shape[0]) for s in steps])
        boundary = np.stack([_boundary(label, s.labels, probs.shape[0]) for s in steps])
        seconds = np.array([step.seconds for step in steps], dtype=np.float64)
        result = ImageResult(index, name, job.iterations, confusion, boundary, seconds)
        job.cache.store(result, np.stack([step.labels for step in steps]), stamp)
        return result


def confusion_matrix(label: np.ndarray, prediction: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64, rows ground truth; void (255) and any label >= C are not counted."""
    valid = label < num_classes
    codes = label[valid].astype(np.int64) * num_classes + prediction[valid]
    counts = np.bincount(codes, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _boundary(label: np.ndarray, prediction: np.ndarray, num_classes: int) -> np.ndarray:
    """(2, C) boundary IoU counts of one image (`rmi_cli.metrics.boundary_counts`)."""
    import torch

    from rmi_cli.metrics import boundary_counts, boundary_width

    height, width_px = label.shape
    width = boundary_width(int(height), int(width_px), BOUNDARY_FRACTION)
    counts = boundary_counts(
        torch.from_numpy(np.ascontiguousarray(label)),
        torch.from_numpy(np.ascontiguousarray(prediction)),
        num_classes,
        width,
    )
    return counts.numpy()


def _read_probs(path: Path) -> np.ndarray:
    try:
        probs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(
            f"probabilities {path} cannot be read ({error}): save them again with `rmi eval`"
        ) from error
    if probs.ndim != 3 or not np.issubdtype(probs.dtype, np.floating):
        raise DataError(
            f"probabilities {path} hold {probs.dtype} {probs.shape}; expected float (C, H, W): "
            f"save them again with `rmi eval`"
        )
    return probs


def _check_match(
    path: Path, probs: np.ndarray, image: np.ndarray, name: str, num_classes: int
) -> None:
    if probs.shape[1:] != image.shape[:2]:
        raise DataError(
            f"probabilities {path} are {probs.shape[1]}x{probs.shape[2]} (HxW) but image {name} "
            f"is {image.shape[0]}x{image.shape[1]}: the CRF needs probabilities at the original "
            f"image size; save them again with `rmi eval`"
        )
    if probs.shape[0] != num_classes:
        raise DataError(
            f"probabilities {path} have {probs.shape[0]} classes but the dataset has "
            f"{num_classes}: they belong to another dataset; save them again with `rmi eval`"
        )


_WORKER: CRFWorker | Exception | None = None  # this pool process's worker, set once


def init_pool_worker(job: CRFJob) -> None:
    """Pool initializer: one thread per process, Ctrl-C left to the parent, then the worker."""
    global _WORKER
    # Ctrl-C reaches the whole process group; the parent alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # P processes should use P cores: torch (imported by the dataset) reads these when it starts.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = "1"
    try:
        _WORKER = CRFWorker(job)
    except Exception as error:
        # A failing initializer only yields an opaque BrokenProcessPool in the parent; keep the
        # error and raise it from the first task instead, where the parent sees it as it is.
        _WORKER = error
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def run_pool_task(index: int) -> ImageResult:
    """Pool task: the CRF on image `index` (see `CRFWorker.__call__`)."""
    if isinstance(_WORKER, Exception):
        raise _WORKER
    if _WORKER is None:
        raise RuntimeError("run_pool_task called outside a pool started with init_pool_worker")
    return _WORKER(index)
