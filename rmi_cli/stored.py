"""What the database hands out: one frozen record per row it reads (no SQL, no pandas here).

`rmi_cli.db` builds these; the reports, the runner and the views read them. Fractions stay
fractions (IoU 0.734, not 73.4), times are milliseconds, memory megabytes, timestamps UTC.
Fields that only some rows have default to None, so a report can be fed hand-made records
(`from_scratch` defaults to False: a hand-made record is not said to be from scratch unless it
says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rmi_cli.records import ImageCounts


@dataclass(frozen=True)
class EvaluationRecord:
    """One evaluation of one run of an experiment (a split x post-processing), or, with `miou`
    None, a placeholder for a run without one. For a CRF job, model/backbone/loss/seed and peak
    training memory are those of the run it post-processes, and the network time is that run's
    current evaluation."""

    experiment: str | None
    run: str  # the run's name in the experiment
    method: str  # table label, e.g. "RMI"
    run_id: int | None = None
    config_hash: str | None = None
    seed: int | None = None
    group: str = ""  # table group, e.g. "DeepLabv3"
    model: str | None = None
    backbone: str | None = None
    loss: str | None = None
    dataset: str | None = None  # when known; else the report infers it from the class names
    pretrained: str | None = None  # the configuration's model.pretrained (None: random init)
    from_scratch: bool = False  # model.pretrained is null (False also where it is not known)
    void: str = "ignore"  # data.void: "ignore" (not scored) or "class" (a class of its own)
    params: Mapping[str, Any] = field(default_factory=dict)  # grid coordinates, dotted keys
    split: str | None = None
    postprocess: str | None = "none"  # "none", "crf-<N>", or "crf" (a pending CRF step)
    miou: float | None = None
    pixel_accuracy: float | None = None
    mean_accuracy: float | None = None
    num_images: int | None = None
    class_iou: Mapping[str, float | None] = field(default_factory=dict)  # in class order
    inference_median_ms: float | None = None
    inference_p90_ms: float | None = None
    crf_median_ms: float | None = None
    total_median_ms: float | None = None
    peak_train_memory_mb: float | None = None
    peak_eval_memory_mb: float | None = None
    protocol: Mapping[str, Any] | None = None  # the InferenceTiming fields
    device: str | None = None
    torch: str | None = None
    status: str = "unknown"  # the run's job status
    # Boundary IoU (revision 0004): None / empty for evaluations stored before it
    boundary_miou: float | None = None
    class_boundary_iou: Mapping[str, float | None] = field(default_factory=dict)
    image_counts: ImageCounts | None = None  # per-image evidence; None before revision 0004
    crf_params: Mapping[str, Any] | None = None  # a CRF evaluation's parameters
    environment: Mapping[str, Any] | None = None  # the `records.Fingerprint` fields
    evaluated_at: datetime | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run (a job) as the queue sees it; `experiment` None for a run in no experiment.
    `stale`: running with an expired lease."""

    experiment: str | None
    name: str
    run_id: int
    config_hash: str
    kind: str  # "train" or "crf"
    status: str
    method: str = ""
    group: str = ""
    # Its grid coordinates (dotted keys): a run without results yet still has its place in an
    # ablation grid.
    params: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    attempts: int = 0
    max_attempts: int = 0
    worker: str | None = None
    heartbeat_at: datetime | None = None
    heartbeat_age_s: float | None = None
    stale: bool = False
    error: str | None = None
    depends_on: str | None = None  # the config hash of the run a CRF job post-processes
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # As in EvaluationRecord; a CRF job's are those of the run it post-processes.
    dataset: str | None = None
    pretrained: str | None = None
    from_scratch: bool = False
    void: str = "ignore"


@dataclass(frozen=True)
class MetricsRecord:
    """One training report of a run."""

    iteration: int
    loss: float
    lr: float
    images_per_s: float
    elapsed_s: float
    rmi_fallbacks: int
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ThroughputRecord:
    """A trained run's stored training summary (for cost estimates and `rmi status --run`)."""

    run_id: int
    config_hash: str
    config: Mapping[str, Any]  # the run's configuration
    iterations: int
    train_time_s: float | None
    images_per_s: float | None
    peak_train_memory_mb: float | None
    device: str | None
    resumed_from: int | None
    world_size: int = 1  # data-parallel processes that trained it
    batch_per_rank: int | None = None  # each one's share of train.batch_size


@dataclass(frozen=True)
class ExperimentRecord:
    """An experiment as it was queued: what the HTML report says about where it came from."""

    name: str
    description: str = ""
    manifest_path: str | None = None  # None: queued without a manifest


@dataclass(frozen=True)
class TrainingPoint:
    """One training report of a run of an experiment, for the training-curves figure."""

    run: str
    method: str
    group: str
    seed: int | None
    iteration: int
    loss: float
    lr: float
