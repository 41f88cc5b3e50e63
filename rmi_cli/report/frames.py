"""Evaluation records (`rmi_cli.stored.EvaluationRecord`, as `rmi_cli.db` reads them) ->
tidy DataFrames.

`scores_frame`: one row per (run x split x post-processing), scores in percent, times in ms.
`class_iou_frame`: the same rows in long format, one row per class.
A run trained from scratch (its configuration's model.pretrained is None) has " (from scratch)"
after its group, so it never shares a row, a block or a paper row with a pretrained run. A run
that scored its void label as a class (`VOID_CLASS_NAME` among its classes) also gets
`miou_named`: the mean over the other, named classes, from the same evaluation.
Both frames take `metric`: "miou" (the IoU) or "boundary-iou" (the boundary IoU in the same
columns, NaN for evaluations stored before it was computed); `counts` carries each row's
`ImageCounts`.
A run without any evaluation (queued, running, failed) is a placeholder row whose `miou` is
None: either in the rows themselves or made by `placeholder_rows` from the experiment's runs
(`rmi_cli.db.run_rows`). It is kept with `evaluated = False` and an empty split so tables can
say what is missing. A CRF job's placeholder has postprocess "crf" (its step counts unknown).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from rmi_cli.errors import UserError
from rmi_cli.records import IoUMetric, named_class_mean
from rmi_cli.stored import EvaluationRecord, RunRecord

KEY = ["group", "method", "postprocess", "params_key"]
SCORE_COLUMNS = [
    "experiment", "run", "run_id", "seed", "status", "dataset", "group", "model", "backbone",
    "method", "loss", "postprocess", "crf_iters", "label", "params", "params_key", "split",
    "evaluated", "miou", "pixel_accuracy", "inference_ms", "inference_p90_ms", "crf_ms",
    "total_ms", "train_memory_mb", "eval_memory_mb", "protocol", "device", "torch", "classes",
    "from_scratch", "scored_classes", "miou_named", "counts",
]  # fmt: skip
# `row`: the position of the evaluation row in the input, to join back onto `scores_frame`
CLASS_COLUMNS = [*KEY, "row", "run", "seed", "split", "class_index", "class_name", "iou"]
_CRF = re.compile(r"crf-(\d+)")
FROM_SCRATCH = "from scratch"


def crf_iterations(postprocess: str) -> int | None:
    """`"crf-5"` -> 5; `"none"` (or anything else) -> None."""
    match = _CRF.fullmatch(postprocess)
    return int(match.group(1)) if match else None


def method_label(method: str, postprocess: str) -> str:
    """How a row's method is displayed: "CE", "CE & CRF-5"; "crf-best" -> "CE & CRF"."""
    if postprocess == "crf-best":
        return f"{method} & CRF"
    iterations = crf_iterations(postprocess)
    return method if iterations is None else f"{method} & CRF-{iterations}"


def params_key(params: Mapping[str, Any]) -> str:
    """A hashable, order-independent spelling of a run's grid coordinates."""
    return json.dumps(dict(params), sort_keys=True, default=str)


def _percent(value: Any) -> float:
    return math.nan if value is None else 100.0 * float(value)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _total_ms(row: EvaluationRecord) -> float:
    if row.total_median_ms is not None:
        return float(row.total_median_ms)
    # the contract fills total_median_ms; tolerate rows that only carry the parts
    parts = [row.inference_median_ms, row.crf_median_ms]
    return math.nan if parts[0] is None else sum(float(p) for p in parts if p is not None)


def group_label(row: EvaluationRecord | RunRecord) -> str:
    """The row's table group, with " (from scratch)" for a run trained from random init."""
    group = str(row.group or "")
    return f"{group} ({FROM_SCRATCH})" if row.from_scratch else group


def named_mean(class_iou: Mapping[str, float | None]) -> float:
    """`records.named_class_mean` in percent (NaN where there is none)."""
    value = named_class_mean(class_iou)
    return math.nan if value is None else 100.0 * value


def metric_values(
    row: EvaluationRecord, metric: IoUMetric
) -> tuple[float | None, Mapping[str, float | None]]:
    """(the mean, {class: value}) of `metric` in one evaluation row (fractions or None)."""
    if metric == "boundary-iou":
        classes = row.class_boundary_iou or dict.fromkeys(row.class_iou or {})
        return row.boundary_miou, classes
    return row.miou, row.class_iou or {}


def _score_record(row: EvaluationRecord, metric: IoUMetric = "miou") -> dict[str, Any]:
    params = dict(row.params or {})
    postprocess = str(row.postprocess or "none")
    method = str(row.method)
    value, class_iou = metric_values(row, metric)
    return {
        "experiment": row.experiment,
        "run": str(row.run),
        "run_id": row.run_id,
        "seed": row.seed,
        "status": str(row.status or "unknown"),
        "dataset": row.dataset,
        "group": group_label(row),
        "model": row.model,
        "backbone": row.backbone,
        "method": method,
        "loss": row.loss,
        "postprocess": postprocess,
        "crf_iters": crf_iterations(postprocess),
        "label": method_label(method, postprocess),
        "params": params,
        "params_key": params_key(params),
        "split": str(row.split or ""),
        "evaluated": row.miou is not None,
        "miou": _percent(value),
        "pixel_accuracy": _percent(row.pixel_accuracy),
        "inference_ms": _number(row.inference_median_ms),
        "inference_p90_ms": _number(row.inference_p90_ms),
        "crf_ms": _number(row.crf_median_ms),
        "total_ms": _total_ms(row),
        "train_memory_mb": _number(row.peak_train_memory_mb),
        "eval_memory_mb": _number(row.peak_eval_memory_mb),
        "protocol": row.protocol,
        "device": row.device,
        "torch": row.torch,
        "classes": tuple(class_iou),
        "from_scratch": row.from_scratch,
        "scored_classes": len(class_iou) if class_iou else math.nan,
        "miou_named": named_mean(class_iou),
        "counts": row.image_counts,
    }


PENDING_CRF = "crf"


def placeholder_rows(
    records: Sequence[EvaluationRecord], runs: Iterable[RunRecord]
) -> list[EvaluationRecord]:
    """A record with no scores for each run that has no evaluation record, at its grid
    coordinates; a run stored without them takes the params of its method's rows when they
    agree (the grid point is then unambiguous)."""
    have = {row.run for row in records}
    known: dict[tuple[str, str], set[str]] = {}
    for row in records:
        known.setdefault((group_label(row), row.method), set()).add(params_key(row.params or {}))
    placeholders = []
    for run in runs:
        if run.name in have:
            continue
        candidates = known.get((group_label(run), run.method or ""), set())
        params = dict(run.params) or (json.loads(candidates.pop()) if len(candidates) == 1 else {})
        placeholders.append(
            EvaluationRecord(
                experiment=run.experiment, run=run.name, method=run.method or "",
                run_id=run.run_id, status=run.status, group=run.group or "", params=params,
                postprocess=PENDING_CRF if run.kind == "crf" else "none", miou=None,
                dataset=run.dataset, pretrained=run.pretrained, from_scratch=run.from_scratch,
                void=run.void,
            )
        )  # fmt: skip
    return placeholders


def scores_frame(records: Iterable[EvaluationRecord], metric: IoUMetric = "miou") -> pd.DataFrame:
    """One row per evaluation row: scores in % (NaN where missing), times in ms."""
    data = [_score_record(row, metric) for row in records]
    frame = pd.DataFrame(data, columns=SCORE_COLUMNS)
    return frame.astype({"evaluated": bool})


def class_iou_frame(
    records: Iterable[EvaluationRecord], metric: IoUMetric = "miou"
) -> pd.DataFrame:
    """Long format: one row per (evaluation row x class), IoU in % (NaN: zero union)."""
    data: list[dict[str, Any]] = []
    for position, row in enumerate(records):
        if row.miou is None:
            continue
        base = _score_record(row, metric) | {"row": position}
        for index, (name, iou) in enumerate(metric_values(row, metric)[1].items()):
            data.append(
                {key: base[key] for key in CLASS_COLUMNS if key in base}
                | {"class_index": index, "class_name": str(name), "iou": _percent(iou)}
            )
    return pd.DataFrame(data, columns=CLASS_COLUMNS)


def with_runs(
    records: Sequence[EvaluationRecord], runs: Iterable[RunRecord]
) -> list[EvaluationRecord]:
    """The evaluation rows, then a placeholder for each run that has none."""
    return [*records, *placeholder_rows(records, runs)]


def resolve_split(scores: pd.DataFrame, split: str | None) -> str:
    """The split to tabulate: the one asked for, or the only one with results."""
    if scores.empty:
        raise UserError("no runs to tabulate: the experiment has no runs in the database yet")
    found = sorted(set(scores.loc[scores["evaluated"], "split"]))
    if split is not None:
        if found and split not in found:
            raise UserError(f"no results on split {split!r}; found results on: {', '.join(found)}")
        return split
    if len(found) > 1:
        raise UserError(f"results on several splits ({', '.join(found)}); choose one with --split")
    return found[0] if found else ""


def select_split(scores: pd.DataFrame, split: str) -> pd.DataFrame:
    """Rows on `split`, plus the placeholder rows of runs with no evaluation at all."""
    keep = (scores["split"] == split) | ~scores["evaluated"]
    return scores[keep].reset_index(drop=True)


def class_names(scores: pd.DataFrame) -> list[str]:
    """Class names in class order (the first evaluated row's; all rows share a dataset)."""
    names: list[str] = []
    for classes in scores.loc[scores["evaluated"], "classes"]:
        names += [name for name in classes if name not in names]
    return names


def varying_params(scores: pd.DataFrame, within: Sequence[str] = ("group",)) -> list[str]:
    """Params keys whose value differs between rows of the same `within` block, in key order."""
    keys: list[str] = []
    for _, block in scores.groupby(list(within), sort=False):
        union = list(dict.fromkeys(key for params in block["params"] for key in params))
        for key in union:
            # a key absent from some rows counts as one more value
            values = {
                json.dumps(params.get(key, "<absent>"), default=str) for params in block["params"]
            }
            if len(values) > 1 and key not in keys:
                keys.append(key)
    return keys
