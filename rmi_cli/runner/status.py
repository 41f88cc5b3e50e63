"""The queue's state (`rmi status`) and everything stored about one run (`rmi status --run R`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rmi_cli import db as store
from rmi_cli.runner.lookup import find_run
from rmi_cli.stored import RunRecord

RUN_KEYS = (
    "experiment", "name", "config_hash", "kind", "status", "attempts", "max_attempts", "worker",
    "heartbeat_age_s", "stale", "depends_on", "created_at", "started_at", "finished_at", "error",
)  # fmt: skip
EVALUATION_KEYS = (
    "split", "postprocess", "miou", "pixel_accuracy", "mean_accuracy", "num_images",
    "inference_median_ms", "inference_p90_ms", "crf_median_ms", "total_median_ms",
    "peak_eval_memory_mb", "protocol", "device", "torch", "class_iou", "boundary_miou",
)  # fmt: skip


def run_detail(database: store.Database, ref: str, experiment: str | None = None) -> dict[str, Any]:
    """The run `ref` (see `lookup.find_run`): its queue state, configuration, training summary
    and reports, and evaluations, as one JSON-ready document."""
    row = find_run(database, ref, experiment)
    job = store.get_job(database, row.run_id)
    summary = next((s for s in store.throughput_rows(database) if s.run_id == row.run_id), None)
    metrics = store.metrics_rows(database, row.run_id)
    training = None
    if summary is not None or metrics:
        stored = asdict(summary) if summary is not None else {}
        training = {k: v for k, v in stored.items() if k not in ("config", "run_id")}
        training |= {
            "reports": len(metrics),
            "last_report": asdict(metrics[-1]) if metrics else None,
        }
    evaluations = []
    if row.experiment is not None:  # scores are read per experiment
        evaluations = [
            {key: getattr(evaluation, key) for key in EVALUATION_KEYS}
            for evaluation in store.evaluation_rows(database, experiment=row.experiment)
            if evaluation.run_id == row.run_id
        ]
    return {
        **{key: getattr(row, key) for key in RUN_KEYS},
        "checkpoint": job.checkpoint_path if job else None,
        "workdir": job.workdir if job else None,
        "training": training,
        "evaluations": evaluations,
        "config": job.config if job else None,
    }


@dataclass(frozen=True)
class QueueStatus:
    """The runs of an experiment (of all, when None) and their jobs per status."""

    runs: list[RunRecord]
    counts: dict[str, int]  # queued, running, done, failed, stale


def queue_status(database: store.Database, experiment: str | None = None) -> QueueStatus:
    """Every run in scope with its job's state; `stale`: running with an expired lease."""
    runs = store.run_rows(database, experiment=experiment)
    return QueueStatus(runs, store.status_counts(database, experiment))
