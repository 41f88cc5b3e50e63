"""`rmi status --run R`: everything stored about one run, as text or as one JSON document."""

from __future__ import annotations

import json
from typing import Any

from rmi_cli import db as store
from rmi_cli.cli.console import out_console
from rmi_cli.errors import UserError

_RUN_KEYS = (
    "experiment", "name", "config_hash", "kind", "status", "attempts", "max_attempts", "worker",
    "heartbeat_age_s", "stale", "depends_on", "created_at", "started_at", "finished_at", "error",
)  # fmt: skip
_EVALUATION_KEYS = (
    "split", "postprocess", "miou", "pixel_accuracy", "mean_accuracy", "num_images",
    "inference_median_ms", "inference_p90_ms", "crf_median_ms", "total_median_ms",
    "peak_eval_memory_mb", "protocol", "device", "torch", "class_iou", "boundary_miou",
)  # fmt: skip


def run_detail(database: store.Database, row: dict[str, Any]) -> dict[str, Any]:
    """The run's queue state, configuration, training summary and reports, and evaluations."""
    job = store.get_job(database, row["run_id"])
    summary = next(
        (s for s in store.throughput_rows(database) if s["run_id"] == row["run_id"]), None
    )
    metrics = store.metrics_rows(database, row["run_id"])
    training = None
    if summary is not None or metrics:
        training = {k: v for k, v in (summary or {}).items() if k not in ("config", "run_id")}
        training |= {"reports": len(metrics), "last_report": metrics[-1] if metrics else None}
    evaluations = []
    if row["experiment"] is not None:  # scores are read per experiment
        evaluations = [
            {key: evaluation.get(key) for key in _EVALUATION_KEYS}
            for evaluation in store.evaluation_rows(database, experiment=row["experiment"])
            if evaluation["run_id"] == row["run_id"]
        ]
    return {
        **{key: row.get(key) for key in _RUN_KEYS},
        "checkpoint": job.checkpoint_path if job else None,
        "workdir": job.workdir if job else None,
        "training": training,
        "evaluations": evaluations,
        "config": job.config if job else None,
    }


def print_run(detail: dict[str, Any], fmt: str) -> None:
    """`json`: the whole detail; `rich` (text): the parts a person reads first."""
    console = out_console()
    if fmt == "json":
        console.print(json.dumps(detail, indent=2, default=str), markup=False, soft_wrap=True)
        return
    if fmt != "rich":
        raise UserError(f"--format {fmt}: one run is shown as rich (text) or json")
    lines = [f"{key}: {detail[key]}" for key in _RUN_KEYS[:8] if key != "max_attempts"]
    lines.append(f"heartbeat: {_age(detail['heartbeat_age_s'])}")
    lines += [f"{key}: {detail[key]}" for key in ("started_at", "finished_at", "checkpoint")]
    if detail["error"]:
        lines += ["error:", detail["error"]]
    training = detail["training"]
    if training and training.get("last_report"):
        last = training["last_report"]
        lines.append(
            f"training: {training['reports']} reports, last at iteration {last['iteration']}: "
            f"loss {last['loss']:.4f}, lr {last['lr']:.2e}, {last['images_per_s']:.1f} images/s"
        )
    if training and training.get("train_time_s") is not None:
        memory = training.get("peak_train_memory_mb")
        lines.append(
            f"trained {training['iterations']} iterations in {training['train_time_s']:.0f} s "
            f"({training['images_per_s']:.1f} images/s on {training['device']}), peak memory "
            + ("not measured (CPU)" if memory is None else f"{memory:.0f} MiB")
        )
    for evaluation in detail["evaluations"]:
        lines.append(_evaluation_line(evaluation))
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)


def _evaluation_line(evaluation: dict[str, Any]) -> str:
    line = (
        f"evaluation {evaluation['split']}/{evaluation['postprocess']}: mIoU "
        f"{100 * evaluation['miou']:.2f} on {evaluation['num_images']} images"
    )
    if evaluation["boundary_miou"] is not None:
        line += f" (boundary mIoU {100 * evaluation['boundary_miou']:.2f})"
    if evaluation["total_median_ms"] is not None:
        line += f", {evaluation['total_median_ms']:.1f} ms/image median"
        if evaluation["crf_median_ms"] is not None:
            line += f" (CRF {evaluation['crf_median_ms']:.1f})"
        elif evaluation["inference_p90_ms"] is not None:
            line += f" (p90 {evaluation['inference_p90_ms']:.1f})"
    if evaluation["peak_eval_memory_mb"] is not None:
        line += f", peak memory {evaluation['peak_eval_memory_mb']:.0f} MiB"
    return line


def _age(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.0f} s ago"
