"""Table 1: methods x {inference time, mIoU, delta vs a baseline}, per model group."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rmi_cli.records import IoUMetric
from rmi_cli.report import notes
from rmi_cli.report.frames import (
    FROM_SCRATCH,
    resolve_split,
    scores_frame,
    select_split,
    varying_params,
    with_runs,
)
from rmi_cli.report.intervals import add_delta_intervals, interval_notes
from rmi_cli.report.paper import with_reference
from rmi_cli.report.stats import add_delta, best_cells, order_rows, over_seeds
from rmi_cli.report.table import Column, ReportTable
from rmi_cli.stored import EvaluationRecord, RunRecord

Records = Sequence[EvaluationRecord]
Runs = Sequence[RunRecord]
METHOD_VALUES = ["miou", "miou_named", "total_ms", "crf_ms", "inference_ms", "eval_memory_mb"]
GROUP = Column("group", "Group", "label")
METHOD = Column("label", "Method", "label")
SEEDS = Column("n", "n", "number", decimals=0)
MIOU = Column("miou", "mIoU (%)", better="max")
METRIC_NAMES: dict[str, str] = {"miou": "mIoU", "boundary-iou": "Boundary mIoU"}
METRIC_TITLES: dict[str, str] = {"miou": "", "boundary-iou": " (boundary IoU)"}
# times and memory print without their (tiny) spread across seeds; CSV/JSON keep it
TIME = Column("total_ms", "Inf. time (ms)", decimals=1, better="min", show_std=False)
CRF_TIME = Column("crf_ms", "+CRF (ms)", decimals=1, show_std=False, applies="is_crf")
MEMORY = Column("eval_memory_mb", "Peak eval mem. (MB)", decimals=0, better="min", show_std=False)


def prepared(
    records: Records, runs: Runs, split: str | None, metric: IoUMetric = "miou"
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(every row incl. placeholders for `runs` without results, the rows on the chosen split
    plus those placeholders, that split)."""
    everything = scores_frame(with_runs(records, runs), metric)
    chosen = resolve_split(everything, split)
    everything = _without_other_splits_crf(everything, chosen)
    return everything, select_split(everything, chosen), chosen


def _without_other_splits_crf(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    """A CRF step post-processes one split: one whose results are all on other splits is not
    a run missing from this table. The index is kept: it is each row's position in the
    records, which the per-class columns are joined on."""
    crf = frame["evaluated"] & (frame["postprocess"] != "none")
    here = set(frame.loc[frame["evaluated"] & (frame["split"] == split), "run"])
    return frame[~(crf & ~frame["run"].isin(here))]


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Dotted keys by their last part ("loss.pool" -> "pool") unless that is ambiguous."""
    shorts = [key.rsplit(".", 1)[-1] for key in keys]
    unique = len(set(shorts)) == len(shorts)
    return dict(zip(keys, shorts if unique else keys, strict=True))


def add_setting(frame: pd.DataFrame, keys: Sequence[str]) -> Column | None:
    """A "Setting" column naming the grid values that tell apart rows of one method."""
    if not keys:
        return None
    names = short_keys(keys)
    frame["setting"] = [
        ", ".join(f"{names[k]}={p[k]}" for k in keys if k in p) for p in frame["params"]
    ]
    return Column("setting", "Setting", "label")


def experiment_name(scores: pd.DataFrame) -> str:
    names = list(dict.fromkeys(str(e) for e in scores["experiment"].dropna()))
    return ", ".join(names) or "results"


def method_rows(
    scores: pd.DataFrame, everything: pd.DataFrame, values: Sequence[str]
) -> tuple[pd.DataFrame, Column | None]:
    """Our rows (one per group, method, post-processing and setting; mean over seeds) in the
    paper's order, and the "Setting" column when a method has several settings."""
    frame = order_rows(over_seeds(scores, values, everything))
    frame["source"] = "ours"
    frame["crf_best"] = False
    setting = add_setting(frame, varying_params(scores, ("group", "method", "postprocess")))
    return frame, setting


def miou_columns(
    scores: pd.DataFrame, frame: pd.DataFrame, metric: IoUMetric = "miou"
) -> list[Column]:
    """The mIoU column (the boundary mIoU for that metric), whose header says over how many
    classes it is, and beside it the mean over the named classes when the void was scored as a
    class."""
    name = METRIC_NAMES[metric]
    counts = sorted({int(n) for n in scores.loc[scores["evaluated"], "scored_classes"].dropna()})
    over = f", {counts[0]} classes" if len(counts) == 1 else ""
    columns = [Column("miou", f"{name} (%{over})", better="max")]
    if "miou_named" in frame and frame["miou_named"].notna().any():
        named = f", {counts[0] - 1} named" if len(counts) == 1 else ", named classes"
        columns.append(Column("miou_named", f"{name} (%{named})", better="max"))
    return columns


def mark_from_scratch(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row of ours trained from scratch says so in its label (its group says it too)."""
    scratch = frame["from_scratch"].fillna(False).astype(bool)
    frame.loc[scratch, "label"] = frame.loc[scratch, "label"] + f" ({FROM_SCRATCH})"
    return frame


def leading_columns(setting: Column | None) -> list[Column]:
    return [GROUP, METHOD, *([setting] if setting else []), SEEDS]


def delta_columns(baseline: str, has_delta: bool, *, intervals: bool = False) -> list[Column]:
    header = f"Δ vs {baseline}" + (" [95% CI]" if intervals else "")
    return [Column("delta", header, "number", signed=True, interval=intervals)] if has_delta else []


def with_delta(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    baseline: str,
    metric: IoUMetric,
    intervals: bool,
) -> tuple[list[Column], list[str]]:
    """Add the Δ column (and its intervals): the columns and the notes that explain them."""
    has_delta = add_delta(frame, value="miou", baseline=baseline)
    lines = [notes.delta_note(baseline, has_delta)]
    if has_delta and intervals:
        add_delta_intervals(frame, scores, baseline=baseline, metric=metric)
        lines += interval_notes(frame, "delta", what="Δ [lo, hi]")
    lines += notes.metric_notes(scores, metric)
    return delta_columns(baseline, has_delta, intervals=intervals), lines


def methods_table(
    records: Records,
    *,
    runs: Runs = (),
    split: str | None = None,
    baseline: str = "CE",
    reference: bool = False,
    memory: bool = False,
    title: str | None = None,
    metric: IoUMetric = "miou",
    intervals: bool = True,
) -> ReportTable:
    """Table 1: per group, one row per method (CRF rows included) with inference time per
    image (median; network + CRF for CRF rows, the CRF's share in "+CRF"), mIoU and its
    difference from `baseline` with its paired bootstrap interval (`intervals`); `memory` adds
    peak evaluation memory; `metric` "boundary-iou" shows the boundary IoU instead. `runs`
    (the experiment's runs) lets the notes name runs with no result yet."""
    everything, scores, chosen = prepared(records, runs, split, metric)
    frame, setting = method_rows(scores, everything, METHOD_VALUES)
    frame = mark_from_scratch(frame)
    extra: list[str] = []
    if reference and metric == "miou":
        frame, extra = with_reference(frame, scores, kinds={"methods", "per-class"}, split=chosen)
    deltas, delta_notes = with_delta(
        frame, scores, baseline=baseline, metric=metric, intervals=intervals
    )
    frame["is_crf"] = frame["postprocess"] != "none"
    crf = bool(frame["is_crf"].any())
    mious = miou_columns(scores, frame, metric)
    columns = [
        *leading_columns(setting),
        TIME,
        *([CRF_TIME] if crf else []),
        *mious,
        *deltas,
        *([MEMORY] if memory else []),
    ]
    table_notes = [
        notes.SEEDS + " Times and memory: the mean over seeds (CSV/JSON carry the std).",
        *notes.timing_notes(scores, crf=crf),
        *([notes.memory_note(scores)] if memory else []),
        *notes.miou_notes(scores, named=len(mious) > 1),
        *delta_notes,
        notes.best_note(),
        notes.CHECKPOINT,
        *notes.scratch_notes(frame),
        *notes.missing_notes(frame, scores),
        *extra,
    ]
    return ReportTable(
        kind="methods",
        title=title
        or f"{experiment_name(scores)}: methods on {chosen or 'no split yet'}"
        + METRIC_TITLES[metric],
        columns=tuple(columns),
        frame=frame,
        best=best_cells(frame, columns, "group"),
        notes=tuple(table_notes),
        section="group",
        meta={"split": chosen, "baseline": baseline, "metric": metric},
    )
