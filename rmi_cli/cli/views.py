"""What the queue commands print: the plan of a dry run, what was queued, the queue's state."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.table import Table

from rmi_cli import db as store
from rmi_cli.cli.console import info, out_console
from rmi_cli.cli.estimate import crf_estimate, format_duration, train_estimate
from rmi_cli.cli.preflight import missing_roots
from rmi_cli.config import RunConfig
from rmi_cli.errors import UserError
from rmi_cli.manifest import ExperimentPlan
from rmi_cli.records import EvalResult
from rmi_cli.system import usable_cores

STATUS_COLUMNS = ("name", "kind", "status", "attempts", "worker", "heartbeat", "error")
# What the dry run shows of every run's configuration: enough to check it against the recipe.
PLAN_SETTINGS = (
    "model.backbone", "model.deep_stem", "model.layout", "model.bn_momentum",
    "model.output_stride", "model.pretrained", "data.name", "data.train_split",
    "data.eval_split", "data.void", "data.crop_size", "data.scales", "data.scale_range",
    "train.iterations", "train.batch_size", "train.lr", "train.warmup_iters", "head_lr_mult",
    "train.weight_decay", "train.precision",
)  # fmt: skip


def print_plan(database: store.Database, plan: ExperimentPlan) -> None:
    """The dry run: every run and CRF step, whether it would run, and what it would cost."""
    known = {row["config_hash"]: row["status"] for row in store.run_rows(database)}
    measured = store.throughput_rows(database)
    table = Table(
        title=f"{plan.name}: {plan.description}",
        title_justify="left",
        caption=plan_settings(plan),
        caption_justify="left",
    )
    for column in ("run", "method", "group", "seed", "status", "estimate", "basis"):
        table.add_column(column, overflow="fold")
    total, crf_total, unknown = 0.0, 0.0, 0
    for run in plan.runs:
        status = known.get(run.config_hash, "new")
        cost = train_estimate(run.config, measured)
        if status != "done":
            total += cost.seconds or 0.0
            unknown += cost.seconds is None
        table.add_row(run.name, run.label, run.group, str(run.config.seed), _skip(status),
                      format_duration(cost.seconds), cost.basis)  # fmt: skip
    for step in plan.crf_steps:
        status = known.get(step.config_hash, "new")
        # The CRF runs on the CPU cores of the worker's machine; assume one like this one.
        cost = crf_estimate(step.target.config, step.split, max(step.crf.iters), usable_cores())
        if status != "done" and cost.seconds is not None:
            crf_total += cost.seconds
        table.add_row(step.name, f"{step.target.label} & CRF", step.target.group, "",
                      _skip(status), format_duration(cost.seconds), cost.basis)  # fmt: skip
    out_console().print(table)
    statuses = Counter(known.get(run.config_hash, "new") for run in plan.runs)
    info(
        f"{len(plan.runs)} runs ({statuses['done']} done and skipped, {statuses['new']} new), "
        f"{len(plan.crf_steps)} CRF steps; about {format_duration(total)} of training and "
        f"evaluation"
        + (f" (+ {unknown} runs without an estimate)" if unknown else "")
        + f" and {format_duration(crf_total)} of CRF for what is left. Nothing was queued "
        f"(dry run)."
    )
    for root in missing_roots(run.config.data for run in plan.runs):
        info(
            f"note: dataset root {root} does not exist on this machine (roots expand on the "
            f"machine that runs each job; set the variable there, or --set data.root=...)"
        )


def plan_settings(plan: ExperimentPlan) -> str:
    """The recipe of the plan's runs: each setting once when every run shares it, else each
    value with the groups that use it ("head_lr_mult=10 (DeepLabv3), 5 (DeepLabv3+)")."""
    parts = []
    for key in PLAN_SETTINGS:
        values: dict[str, list[str]] = {}
        for run in plan.runs:
            groups = values.setdefault(json.dumps(_setting(run.config, key)), [])
            if run.group not in groups:
                groups.append(run.group)
        if list(values) == ["null"] and key.startswith("data.scale"):
            continue
        # as YAML would write them: true, null, 0.05, [0.75, 1.25], strings unquoted
        shown = [v.strip('"') for v in values]
        if len(values) == 1:
            parts.append(f"{key}={shown[0]}")
        else:
            each = [f"{v} ({', '.join(g)})" for v, g in zip(shown, values.values(), strict=True)]
            parts.append(f"{key}=" + ", ".join(each))
    return "settings: " + "; ".join(parts)


def _setting(config: RunConfig, key: str) -> Any:
    if key == "head_lr_mult":
        return config.head_lr_mult()  # resolved: the model's default when unset
    node: Any = config.to_json_dict()
    for part in key.split("."):
        node = node[part]
    return node


def _skip(status: str) -> str:
    return "done (skip)" if status == "done" else status


def print_enqueued(report: store.EnqueueReport) -> None:
    """One line: what `rmi ablate` queued and what it left alone."""
    new, again = report.names("new"), report.names("requeued")
    done = report.names("exists", "done")
    waiting = [n for n in report.names("exists") if n not in done]
    parts = [f"{len(new)} queued", f"{len(again)} re-queued", f"{len(done)} already done"]
    parts.append(f"{len(waiting)} already queued, running or failed")
    info(f"{report.experiment}: " + ", ".join(parts))
    if report.repointed:
        # The new configuration may be queued now or done already (under another experiment,
        # or before a switch back): the counts above say which.
        info(
            f"configuration changed for: {', '.join(report.repointed)} (the experiment now uses "
            f"the runs of the new configuration; the old runs stay in the database)"
        )


def print_status(database: store.Database, experiment: str | None, fmt: str) -> None:
    """The queue as a table (rich, csv or json) on stdout, counts on stderr."""
    rows = [_status_row(row) for row in store.run_rows(database, experiment=experiment)]
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
    _print_counts(database, experiment)


def print_experiment_status(database: store.Database, experiment: str) -> None:
    """The counts line after a run of `rmi ablate`."""
    _print_counts(database, experiment)


def _status_row(row: dict[str, Any]) -> dict[str, Any]:
    error = (row["error"] or "").strip().splitlines()
    return {
        "name": f"{row['experiment']}/{row['name']}" if row["experiment"] else row["name"],
        "kind": row["kind"],
        "status": "stale" if row["stale"] else row["status"],
        "attempts": f"{row['attempts']}/{row['max_attempts']}",
        "worker": row["worker"] or "",
        "heartbeat": _age(row),
        "error": error[-1] if error else "",
    }


def _age(row: dict[str, Any]) -> str:
    age = row.get("heartbeat_age_s")
    return "" if age is None else f"{age:.0f} s ago"


def _status_table(rows: Sequence[dict[str, Any]], experiment: str | None) -> Table:
    table = Table(title=f"runs of {experiment}" if experiment else "runs", title_justify="left")
    for column in STATUS_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = {"failed": "red", "stale": "yellow", "done": "green"}.get(row["status"])
        table.add_row(*(str(row[c]) for c in STATUS_COLUMNS), style=style)
    return table


def _print_counts(database: store.Database, experiment: str | None) -> None:
    counts = store.status_counts(database, experiment)
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
