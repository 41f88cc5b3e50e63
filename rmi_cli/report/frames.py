"""Evaluation rows (dicts from `rmi_cli.db`) -> tidy DataFrames.

`scores_frame`: one row per (run x split x post-processing), scores in percent, times in ms.
`class_iou_frame`: the same rows in long format, one row per class.
Both take `metric`: "miou" (the IoU) or "boundary-iou" (the boundary IoU in the same columns, NaN
for evaluations stored before it was computed); `counts` carries each row's `ImageCounts`.
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
from rmi_cli.records import IoUMetric

KEY = ["group", "method", "postprocess", "params_key"]
SCORE_COLUMNS = [
    "experiment", "run", "run_id", "seed", "status", "dataset", "group", "model", "backbone",
    "method", "loss", "postprocess", "crf_iters", "label", "params", "params_key", "split",
    "evaluated", "miou", "pixel_accuracy", "inference_ms", "inference_p90_ms", "crf_ms",
    "total_ms", "train_memory_mb", "eval_memory_mb", "protocol", "device", "torch", "classes",
    "counts",
]  # fmt: skip
# `row`: the position of the evaluation row in the input, to join back onto `scores_frame`
CLASS_COLUMNS = [*KEY, "row", "run", "seed", "split", "class_index", "class_name", "iou"]
_CRF = re.compile(r"crf-(\d+)")


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


def _total_ms(row: Mapping[str, Any]) -> float:
    total = row.get("total_median_ms")
    if total is not None:
        return float(total)
    # the contract fills total_median_ms; tolerate rows that only carry the parts
    parts = [row.get("inference_median_ms"), row.get("crf_median_ms")]
    return math.nan if parts[0] is None else sum(float(p) for p in parts if p is not None)


def metric_values(row: Mapping[str, Any], metric: IoUMetric) -> tuple[Any, Mapping[str, Any]]:
    """(the mean, {class: value}) of `metric` in one evaluation row (fractions or None)."""
    if metric == "boundary-iou":
        classes = row.get("class_boundary_iou") or {}
        return row.get("boundary_miou"), classes or dict.fromkeys(row.get("class_iou") or {})
    return row.get("miou"), row.get("class_iou") or {}


def _score_record(row: Mapping[str, Any], metric: IoUMetric = "miou") -> dict[str, Any]:
    params = dict(row.get("params") or {})
    postprocess = str(row.get("postprocess") or "none")
    method = str(row["method"])
    value, class_iou = metric_values(row, metric)
    return {
        "experiment": row.get("experiment"),
        "run": str(row["run"]),
        "run_id": row.get("run_id"),
        "seed": row.get("seed"),
        "status": str(row.get("status") or "unknown"),
        "dataset": row.get("dataset"),
        "group": str(row.get("group") or ""),
        "model": row.get("model"),
        "backbone": row.get("backbone"),
        "method": method,
        "loss": row.get("loss"),
        "postprocess": postprocess,
        "crf_iters": crf_iterations(postprocess),
        "label": method_label(method, postprocess),
        "params": params,
        "params_key": params_key(params),
        "split": str(row.get("split") or ""),
        "evaluated": row.get("miou") is not None,
        "miou": _percent(value),
        "pixel_accuracy": _percent(row.get("pixel_accuracy")),
        "inference_ms": _number(row.get("inference_median_ms")),
        "inference_p90_ms": _number(row.get("inference_p90_ms")),
        "crf_ms": _number(row.get("crf_median_ms")),
        "total_ms": _total_ms(row),
        "train_memory_mb": _number(row.get("peak_train_memory_mb")),
        "eval_memory_mb": _number(row.get("peak_eval_memory_mb")),
        "protocol": row.get("protocol"),
        "device": row.get("device"),
        "torch": row.get("torch"),
        "classes": tuple(class_iou),
        "counts": row.get("image_counts"),
    }


PENDING_CRF = "crf"


def placeholder_rows(
    records: Sequence[Mapping[str, Any]], runs: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """A row with no scores for each run (`run_rows` dict: name, status, kind, method, group,
    optional params) that has no evaluation row. Without `params`, a run takes those of its
    method's rows when they agree (the grid point is then unambiguous)."""
    have = {str(row["run"]) for row in records}
    known: dict[tuple[str, str], set[str]] = {}
    for row in records:
        key = (str(row.get("group") or ""), str(row["method"]))
        known.setdefault(key, set()).add(params_key(row.get("params") or {}))
    placeholders = []
    for run in runs:
        name = str(run.get("name") or run.get("run"))
        if name in have:
            continue
        group, method = str(run.get("group") or ""), str(run.get("method") or "")
        params = run.get("params")
        if params is None:
            candidates = known.get((group, method), set())
            params = json.loads(candidates.pop()) if len(candidates) == 1 else {}
        placeholders.append(
            {"experiment": run.get("experiment"), "run": name, "run_id": run.get("run_id"),
             "status": run.get("status"), "group": group, "method": method, "params": params,
             "postprocess": PENDING_CRF if run.get("kind") == "crf" else "none", "miou": None}
        )  # fmt: skip
    return placeholders


def scores_frame(records: Iterable[Mapping[str, Any]], metric: IoUMetric = "miou") -> pd.DataFrame:
    """One row per evaluation row: scores in % (NaN where missing), times in ms."""
    data = [_score_record(row, metric) for row in records]
    frame = pd.DataFrame(data, columns=SCORE_COLUMNS)
    return frame.astype({"evaluated": bool})


def class_iou_frame(
    records: Iterable[Mapping[str, Any]], metric: IoUMetric = "miou"
) -> pd.DataFrame:
    """Long format: one row per (evaluation row x class), IoU in % (NaN: zero union)."""
    data: list[dict[str, Any]] = []
    for position, row in enumerate(records):
        if row.get("miou") is None:
            continue
        base = _score_record(row, metric) | {"row": position}
        for index, (name, iou) in enumerate(metric_values(row, metric)[1].items()):
            data.append(
                {key: base[key] for key in CLASS_COLUMNS if key in base}
                | {"class_index": index, "class_name": str(name), "iou": _percent(iou)}
            )
    return pd.DataFrame(data, columns=CLASS_COLUMNS)


def with_runs(
    records: Sequence[Mapping[str, Any]], runs: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
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
