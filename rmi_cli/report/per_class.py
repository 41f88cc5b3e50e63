"""Tables 2 and 4: one row per group and method, each class's IoU and the mIoU."""

from __future__ import annotations

import pandas as pd

from rmi_cli.records import IoUMetric
from rmi_cli.report import notes
from rmi_cli.report.frames import class_iou_frame, class_names, select_split
from rmi_cli.report.methods import (
    METRIC_TITLES,
    Records,
    Runs,
    experiment_name,
    leading_columns,
    mark_from_scratch,
    method_rows,
    miou_columns,
    prepared,
    with_delta,
)
from rmi_cli.report.paper import with_reference
from rmi_cli.report.stats import best_cells
from rmi_cli.report.table import MISSING, Column, ReportTable


def with_class_columns(
    everything: pd.DataFrame, records: Records, metric: IoUMetric = "miou"
) -> tuple[pd.DataFrame, list[str]]:
    """`everything` plus one column `iou.<class>` per class (IoU in %, NaN: zero union)."""
    long = class_iou_frame(records, metric)
    names = class_names(everything)
    if long.empty:
        return everything, names
    wide = long.pivot(index="row", columns="class_name", values="iou")
    wide = wide.reindex(columns=names).add_prefix("iou.")
    return everything.join(wide), names


def best_of_crf(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep, per method and setting, only the CRF row with the best mean mIoU (the paper's
    Table 4: "the best mIoU score from results of CRF with steps 1, 5, and 10")."""
    crf = frame["postprocess"] != "none"
    keep = list(frame.index[~crf])
    for _, block in frame[crf].groupby(["group", "method", "params_key"], sort=False):
        best = block["miou"].idxmax() if block["miou"].notna().any() else block.index[0]
        steps = "/".join(str(int(i)) for i in sorted(block["crf_iters"].dropna()))
        frame.loc[best, "label"] = f"{frame.at[best, 'label']} (best of {steps})"
        frame.loc[best, "crf_best"] = True
        keep.append(best)
    return frame.loc[sorted(keep)].reset_index(drop=True)


def _zero_union_note(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    ours = frame[(frame["source"] == "ours") & (frame["n"] > 0)]
    empty = [k.removeprefix("iou.") for k in keys if ours[k].isna().any()]
    if not empty:
        return []
    return [
        f"{MISSING} in a class column of a row with results: the class had zero union on this "
        f"split in every seed, so it is left out of that mIoU ({', '.join(empty)})."
    ]


def per_class_table(
    records: Records,
    *,
    runs: Runs = (),
    split: str | None = None,
    baseline: str = "CE",
    reference: bool = False,
    best_crf: bool = True,
    class_std: bool = False,
    title: str | None = None,
    metric: IoUMetric = "miou",
    intervals: bool = True,
) -> ReportTable:
    """Tables 2/4: IoU (%) of every class and the mIoU, mean over seeds; `best_crf` keeps only
    the best CRF iteration count per method (as the paper does); `class_std` prints the std
    of class IoUs too (always in CSV/JSON); `runs`, `metric`, `intervals` as for
    `methods_table`."""
    everything, _, chosen = prepared(records, runs, split, metric)
    everything, names = with_class_columns(everything, records, metric)
    scores = select_split(everything, chosen)
    keys = [f"iou.{name}" for name in names]
    frame, setting = method_rows(scores, everything, ["miou", "miou_named", *keys])
    if best_crf:
        frame = best_of_crf(frame)
    frame = mark_from_scratch(frame)
    extra: list[str] = []
    if reference and metric == "miou":
        frame, extra = with_reference(
            frame, scores, kinds={"per-class"}, split=chosen, classes=names
        )
    deltas, delta_notes = with_delta(
        frame, scores, baseline=baseline, metric=metric, intervals=intervals
    )
    mious = miou_columns(scores, frame, metric)
    columns = [
        *leading_columns(setting),
        *(Column(k, k.removeprefix("iou."), better="max", show_std=class_std) for k in keys),
        *mious,
        *deltas,
    ]
    return ReportTable(
        kind="per-class",
        title=title
        or f"{experiment_name(scores)}: per-class IoU on {chosen or 'no split yet'}"
        + METRIC_TITLES[metric],
        columns=tuple(columns),
        frame=frame,
        best=best_cells(frame, columns, "group"),
        notes=(
            *_first_notes(frame, best_crf=best_crf, class_std=class_std),
            *notes.miou_notes(scores, named=len(mious) > 1),
            *delta_notes,
            notes.best_note(),
            notes.CHECKPOINT,
            *notes.scratch_notes(frame),
            *_zero_union_note(frame, keys),
            *notes.missing_notes(frame, scores),
            *extra,
        ),
        section="group",
        meta={"split": chosen, "baseline": baseline, "classes": names, "metric": metric},
    )


def _first_notes(frame: pd.DataFrame, *, best_crf: bool, class_std: bool) -> list[str]:
    crf = best_crf and bool((frame["postprocess"] != "none").any())
    return [
        notes.SEEDS.replace("Values", "IoU and mIoU (%)"),
        *([] if class_std else ["Class columns show the mean only; CSV/JSON carry the std."]),
        *(
            ["CRF: only the step count with the best mean mIoU is shown (paper Table 4)."]
            if crf
            else []
        ),
    ]
