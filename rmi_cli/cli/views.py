"""What the queue and run commands print: the plan of a dry run, the queue's state, scores."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from rich.table import Table

from rmi_cli import runner
from rmi_cli.cli.console import info, out_console
from rmi_cli.errors import UserError
from rmi_cli.records import EvalResult
from rmi_cli.runner.estimate import format_duration
from rmi_cli.stored import RunRecord

STATUS_COLUMNS = ("name", "kind", "status", "attempts", "worker", "heartbeat", "error")
StatusFormat = Literal["rich", "csv", "json"]


def print_plan(estimate: runner.PlanEstimate) -> None:
    """The dry run: every run and CRF step, whether it would run, and what it would cost."""
    plan = estimate.plan
    for message in estimate.weights_warnings:  # before the table scrolls them away
        info(f"warning: {message}")
    table = Table(
        title=f"{plan.name}: {plan.description}",
        title_justify="left",
        caption=settings_line(estimate.settings),
        caption_justify="left",
    )
    for column in ("run", "method", "group", "seed", "status", "estimate", "basis"):
        table.add_column(column, overflow="fold")
    for line in (*estimate.runs, *estimate.crf_steps):
        table.add_row(line.name, line.method, line.group, line.seed, _skip(line.status),
                      format_duration(line.estimate.seconds), line.estimate.basis)  # fmt: skip
    out_console().print(table)
    statuses, unknown = estimate.statuses, estimate.unestimated
    info(
        f"{len(plan.runs)} runs ({statuses.get('done', 0)} done and skipped, "
        f"{statuses.get('new', 0)} new), {len(plan.crf_steps)} CRF steps; about "
        f"{format_duration(estimate.train_s)} of training and evaluation"
        + (f" (+ {unknown} runs without an estimate)" if unknown else "")
        + f" and {format_duration(estimate.crf_s)} of CRF for what is left. Nothing was queued "
        f"(dry run)."
    )
    for root in estimate.missing_roots:
        info(
            f"note: dataset root {root} does not exist on this machine (roots expand on the "
            f"machine that runs each job; set the variable there, or --set data.root=...)"
        )


def settings_line(settings: Sequence[runner.PlanSetting]) -> str:
    """The recipe of the plan's runs: each setting once when every run shares it, else each
    value with the groups that use it ("head_lr_mult=10.0 (DeepLabv3), 5.0 (DeepLabv3+)")."""
    parts = []
    for setting in settings:
        # as YAML would write them: true, null, 0.05, [0.75, 1.25], strings unquoted
        shown = [json.dumps(each.value).strip('"') for each in setting.values]
        if len(shown) == 1:
            parts.append(f"{setting.key}={shown[0]}")
        else:
            each = [
                f"{value} ({', '.join(found.groups)})"
                for value, found in zip(shown, setting.values, strict=True)
            ]
            parts.append(f"{setting.key}=" + ", ".join(each))
    return "settings: " + "; ".join(parts)


def _skip(status: str) -> str:
    return "done (skip)" if status == "done" else status


def print_status(status: runner.QueueStatus, experiment: str | None, fmt: str) -> None:
    """The queue as a table (rich, csv or json) on stdout, counts on stderr."""
    rows = [_status_row(row) for row in status.runs]
    if fmt == "json":
        out_console().print_json(json.dumps(rows, default=str))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=STATUS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        out_console().print(buffer.getvalue(), end="", markup=False)
    elif fmt == "rich":
        out_console().print(_status_table(rows, experiment))
    else:
        raise UserError(f"--format: expected rich, csv or json for rmi status; found {fmt!r}")
    print_counts(status.counts, experiment)


def _status_row(row: RunRecord) -> dict[str, Any]:
    error = (row.error or "").strip().splitlines()
    age = row.heartbeat_age_s
    return {
        "name": f"{row.experiment}/{row.name}" if row.experiment else row.name,
        "kind": row.kind,
        "status": "stale" if row.stale else row.status,
        "attempts": f"{row.attempts}/{row.max_attempts}",
        "worker": row.worker or "",
        "heartbeat": "" if age is None else f"{age:.0f} s ago",
        "error": error[-1] if error else "",
    }


def _status_table(rows: Sequence[dict[str, Any]], experiment: str | None) -> Table:
    table = Table(title=f"runs of {experiment}" if experiment else "runs", title_justify="left")
    for column in STATUS_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = {"failed": "red", "stale": "yellow", "done": "green"}.get(row["status"])
        table.add_row(*(str(row[c]) for c in STATUS_COLUMNS), style=style)
    return table


def print_counts(counts: dict[str, int], experiment: str | None) -> None:
    """One line: the jobs per status, and when."""
    scope = f"{experiment}: " if experiment else ""
    shown = ", ".join(f"{counts[key]} {key}" for key in ("queued", "running", "done", "failed"))
    stale = f" ({counts['stale']} stale: a worker stopped heartbeating)" if counts["stale"] else ""
    info(f"{scope}{shown}{stale} at {datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}")


def print_scores(result: EvalResult, label: str) -> None:
    """Per-class IoU of one evaluation (stdout) and its protocol line (stderr)."""
    scores = result.scores
    table = Table(
        title=f"{label}: {result.split}, {result.num_images} images", title_justify="left"
    )
    table.add_column("class")
    table.add_column("IoU (%)", justify="right")
    for name, iou in zip(scores.class_names, scores.iou, strict=True):
        table.add_row(name, "—" if iou is None else f"{100 * iou:.2f}")
    table.add_row(f"mIoU ({len(scores.class_names)} classes)", f"{100 * scores.miou:.2f}",
                  style="bold")  # fmt: skip
    if scores.named_miou is not None:  # the void scored as a class: the named classes' mean
        named = f"mIoU ({len(scores.class_names) - 1} named)"
        table.add_row(named, f"{100 * scores.named_miou:.2f}")
    table.add_row("pixel accuracy", f"{100 * scores.pixel_accuracy:.2f}")
    out_console().print(table)
    if scores.excluded_classes:
        info(f"excluded from mIoU (no pixels in prediction or truth): "
             f"{', '.join(scores.excluded_classes)}")  # fmt: skip
    if result.timing is not None:
        from rmi_cli.report.notes import protocol_text  # pandas: not on every command's path

        t = result.timing
        info(
            f"inference {t.median_ms:.1f} ms median, {t.p90_ms:.1f} ms p90 per image: "
            f"{protocol_text(asdict(t))}"
        )
    if result.peak_eval_memory_mb is not None:
        info(f"peak evaluation memory {result.peak_eval_memory_mb:.0f} MiB (max allocated)")
