"""`rmi status --run R`: everything stored about one run, shown as text or one JSON document."""

from __future__ import annotations

import json
from typing import Any

from rmi_cli.cli.console import out_console
from rmi_cli.errors import UserError
from rmi_cli.runner.status import RUN_KEYS


def print_run(detail: dict[str, Any], fmt: str) -> None:
    """`json`: the whole detail; `rich` (text): the parts a person reads first."""
    console = out_console()
    if fmt == "json":
        console.print(json.dumps(detail, indent=2, default=str), markup=False, soft_wrap=True)
        return
    if fmt != "rich":
        raise UserError(f"--format {fmt}: one run is shown as rich (text) or json")
    lines = [f"{key}: {detail[key]}" for key in RUN_KEYS[:8] if key != "max_attempts"]
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
            f"({training['images_per_s']:.1f} images/s on {training['device']}"
            + _processes(training)
            + "), peak memory "
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


def _processes(training: dict[str, Any]) -> str:
    world = training.get("world_size") or 1
    if world == 1:
        return ""
    return f" x {world} processes, {training.get('batch_per_rank')} images each per step"


def _age(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.0f} s ago"
