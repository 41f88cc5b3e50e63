"""Plain result records passed from the engine (torch side) to the database (SQL side).

Nothing here imports torch, SQLAlchemy or pandas: the engine and the CRF produce these, the CLI
hands them to `rmi_cli.db`, which stores them. Every field is a JSON type or a path, except the
per-image counts (`ImageCounts`), which are a NumPy array (NumPy is imported where they are made).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rmi_cli.constants import VOID_CLASS_NAME

if TYPE_CHECKING:
    import numpy as np

# The two IoU statistics every evaluation stores, as `rmi table --metric` spells them.
IoUMetric = Literal["miou", "boundary-iou"]
# The rows of `ImageCounts.counts`, in order.
COUNT_ROWS = ("intersection", "union", "boundary_intersection", "boundary_union")


@dataclass(frozen=True)
class Fingerprint:
    """Where a number was measured: enough to say which machine and software produced it."""

    hostname: str
    platform: str
    python: str
    torch: str
    torchvision: str
    device: str  # "cpu" or the GPU name, e.g. "NVIDIA H100 80GB HBM3"
    cuda: str | None = None  # CUDA runtime torch was built with
    driver: str | None = None  # NVIDIA driver version
    cudnn: str | None = None
    cpu: str | None = None
    num_threads: int | None = None
    git_commit: str | None = None  # with a "+dirty" suffix when the tree had changes
    rmi_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainMetrics:
    """One periodic training report (the engine's callback receives these)."""

    iteration: int  # 1-based: the number of optimiser steps done
    loss: float
    lr: float
    images_per_s: float
    elapsed_s: float
    rmi_fallbacks: int = 0  # Cholesky fallbacks of the RMI loss since the start of the run
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run reports."""

    checkpoint: str  # path of the final checkpoint
    iterations: int
    final_loss: float
    train_time_s: float  # wall time of this process's part of the run
    images_per_s: float
    peak_train_memory_mb: float | None  # torch.cuda.max_memory_allocated; None on the CPU
    rmi_fallbacks: int
    resumed_from: int | None  # iteration the run resumed from, None for a fresh start
    fingerprint: Fingerprint  # rank 0's machine when several processes trained
    world_size: int = 1  # data-parallel processes (torchrun); 1 for one process
    batch_per_rank: int | None = None  # each process's share of train.batch_size


@dataclass(frozen=True)
class InferenceTiming:
    """Per-image inference time under a stated protocol (forward pass only)."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    images: int  # number of timed images
    warmup_images: int
    batch_size: int
    input_size: str  # "360x480", or "variable (max 500x500)"
    device: str
    precision: str  # "fp32" or "bf16"
    protocol: str  # one human sentence, printed next to the number in tables


@dataclass(frozen=True)
class SegmentationScores:
    """Scores from one confusion matrix (rows: ground truth, columns: prediction)."""

    class_names: tuple[str, ...]
    iou: tuple[float | None, ...]  # None where the class has zero union (excluded from mIoU)
    miou: float
    pixel_accuracy: float
    mean_accuracy: float
    confusion: tuple[tuple[int, ...], ...]
    # Boundary IoU (Cheng et al., CVPR 2021) per class and its mean over classes with a
    # non-empty band union; None where it was not computed (results stored before revision 0004).
    boundary_iou: tuple[float | None, ...] | None = None
    boundary_miou: float | None = None

    @property
    def excluded_classes(self) -> tuple[str, ...]:
        return tuple(n for n, v in zip(self.class_names, self.iou, strict=True) if v is None)

    @property
    def named_miou(self) -> float | None:
        """The mean over the named classes when the void was scored as a class (else None)."""
        return named_class_mean(dict(zip(self.class_names, self.iou, strict=True)))


def named_class_mean(class_iou: Mapping[str, float | None]) -> float | None:
    """Mean IoU over the classes other than `VOID_CLASS_NAME`, from an evaluation that scored
    the void as a class (None when it did not, or no named class has a union): the paper's
    11 printed CamVid columns average to this, its printed mIoU is over all 12."""
    if VOID_CLASS_NAME not in class_iou:
        return None
    named = [v for name, v in class_iou.items() if name != VOID_CLASS_NAME and v is not None]
    return math.fsum(named) / len(named) if named else None


@dataclass(frozen=True, eq=False)
class ImageCounts:
    """Per-image, per-class pixel counts of one evaluation, over the labelled pixels (void and
    labels >= C are not counted): enough to recompute any IoU statistic over any subset or
    resample of the images without running inference again.

    `counts[i, k, c]`: image i, row k of `COUNT_ROWS` (|G∩P|, |G∪P|, then the same within the
    boundary bands, |G_d∩P_d| and |G_d∪P_d|), class c. Summed over images, rows 0/1 give the
    dataset's IoU and rows 2/3 its boundary IoU.
    """

    names: tuple[str, ...]  # image names, in evaluation order
    counts: np.ndarray  # (N, 4, C) int64
    boundary_fraction: float  # the band width d as a fraction of the image diagonal

    def __post_init__(self) -> None:
        shape: tuple[int, ...] = tuple(getattr(self.counts, "shape", ()))
        if len(shape) != 3 or shape[0] != len(self.names) or shape[1] != len(COUNT_ROWS):
            raise ValueError(
                f"ImageCounts: counts of shape {shape} do not fit {len(self.names)} image names "
                f"(expected (N, {len(COUNT_ROWS)}, C))"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageCounts):
            return NotImplemented
        return (
            (self.names, self.boundary_fraction) == (other.names, other.boundary_fraction)
            and self.counts.shape == other.counts.shape
            and bool((self.counts == other.counts).all())
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, like the array it holds

    @property
    def num_classes(self) -> int:
        return int(self.counts.shape[2])

    def pair(self, metric: IoUMetric = "miou") -> tuple[np.ndarray, np.ndarray]:
        """(intersection, union), each (N, C), of the IoU (`"miou"`) or the boundary IoU."""
        first = 0 if metric == "miou" else 2
        return self.counts[:, first], self.counts[:, first + 1]


@dataclass(frozen=True)
class EvalResult:
    """Evaluation of one model on one split, without post-processing."""

    split: str
    num_images: int
    scores: SegmentationScores
    timing: InferenceTiming | None  # None when timing was switched off
    peak_eval_memory_mb: float | None
    probs_dir: str | None  # float32 probabilities, one file per image, when saved
    fingerprint: Fingerprint
    image_counts: ImageCounts | None = None  # per-image evidence; None from older callers


@dataclass(frozen=True)
class CRFResult:
    """Dense-CRF post-processing of one run's probabilities at one iteration count."""

    split: str
    iterations: int
    num_images: int
    scores: SegmentationScores
    crf_median_ms: float  # CRF time per image (one process, excluding I/O)
    crf_p90_ms: float
    workers: int
    params: dict[str, float]
    fingerprint: Fingerprint
    image_counts: ImageCounts | None = None
