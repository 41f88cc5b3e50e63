"""Table 3: an ablation grid, mIoU (%) with one params key down the rows, one across."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from rmi_cli.errors import UserError
from rmi_cli.records import IoUMetric
from rmi_cli.report import notes
from rmi_cli.report.frames import FROM_SCRATCH, varying_params
from rmi_cli.report.intervals import add_cell_intervals, interval_notes
from rmi_cli.report.methods import Records, Runs, experiment_name, prepared, short_keys
from rmi_cli.report.paper import (
    comparison_notes,
    infer_dataset,
    no_reference_note,
    paper_tables,
    where,
)
from rmi_cli.report.stats import best_cells, order_rows, over_seeds
from rmi_cli.report.table import Column, ReportTable

CELL_INTERVALS = "Each cell's [lo, hi] (in CSV/JSON and the figure's error bars)"


def choose_axes(
    varying: Sequence[str], present: Sequence[str], rows: str | None, cols: str | None
) -> tuple[str, str | None]:
    """The rows and columns keys: as given (any params key of the runs), or the varied keys
    when that is unambiguous (one varied key: a 1-D grid)."""
    for given in (rows, cols):
        if given is not None and given not in present:
            raise UserError(
                f"ablation: {given!r} is not a grid key of this experiment; its keys: "
                f"{', '.join(present) or 'none'}"
            )
    rest = [k for k in varying if k not in (rows, cols)]
    if rows is None and cols is None and len(rest) <= 2:
        rows, cols = [*rest, None, None][:2]
    elif rows is None and len(rest) == 1:
        rows = rest[0]
    elif rows is not None and cols is None and len(rest) <= 1:
        cols = [*rest, None][0]
    if rows is None and not varying:
        raise UserError("ablation: no grid key varies in this experiment; use --kind methods")
    if rows is None:
        raise UserError(
            f"ablation: the experiment varies {', '.join(varying)}; name the rows and columns "
            "keys (--rows and --cols, or rows: and cols: in the manifest's table entry)"
        )
    return rows, cols


def sorted_values(values: Sequence[Any]) -> list[Any]:
    """Distinct values: numbers ascending, anything else in order of first appearance."""
    distinct = list(dict.fromkeys(json.dumps(v, default=str) for v in values))
    loaded = [json.loads(v) for v in distinct]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in loaded)
    return sorted(loaded) if numeric else loaded


def same(a: Any, b: Any) -> bool:
    """Grid values compared as written in YAML: 4 == 4.0, "avg" == "avg"."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b))
    return str(a) == str(b)


def grid_frame(agg: pd.DataFrame, rows: str, cols: str | None) -> tuple[pd.DataFrame, list[Any]]:
    """One line per (group, method, other settings, row value), one cell per column value."""
    col_values = sorted_values([p.get(cols) for p in agg["params"]]) if cols else [None]
    lines: dict[tuple[str, ...], dict[str, Any]] = {}
    for _, cell in agg.iterrows():
        params = cell["params"]
        other = {k: v for k, v in params.items() if k not in (rows, cols)}
        line = (cell["group"], cell["method"], json.dumps(other), json.dumps(params.get(rows)))
        entry = lines.setdefault(line, _line(cell, rows, other))
        col = column_key(cols, params.get(cols))
        entry |= {col: cell["miou"], f"{col}_std": cell["miou_std"], f"{col}_n": cell["n"]}
        if "miou_lo" in cell:
            entry |= {f"{col}_lo": cell["miou_lo"], f"{col}_hi": cell["miou_hi"]}
    frame = pd.DataFrame(list(lines.values()))
    blocks = list(
        dict.fromkeys(zip(frame["group"], frame["method"], frame["setting"], strict=True))
    )
    order = [json.dumps(v, default=str) for v in sorted_values(_known(frame["row_value"]))]
    frame["block"] = [
        blocks.index(b) for b in zip(frame["group"], frame["method"], frame["setting"], strict=True)
    ]
    # A line without a value for the rows key (a run stored without its grid coordinates)
    # goes last, as "n/a": NaN is not equal to itself, so a plain list.index failed on it.
    ranks = {key: rank for rank, key in enumerate(order)}
    frame["rank"] = [
        ranks.get(json.dumps(v, default=str), len(order)) if not _missing(v) else len(order)
        for v in frame["row_value"]
    ]
    frame = frame.sort_values(["block", "rank"], kind="stable").drop(columns=["block", "rank"])
    return frame.reset_index(drop=True), col_values


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _known(values: Sequence[Any]) -> list[Any]:
    return [value for value in values if not _missing(value)]


def _line(cell: pd.Series, rows: str, other: dict[str, Any]) -> dict[str, Any]:
    value = cell["params"].get(rows)
    label = "n/a" if value is None else str(value)
    scratch = bool(cell.get("from_scratch", False))
    return {
        "source": "ours",
        "group": cell["group"],
        "method": cell["method"],
        "setting": ", ".join(f"{k}={v}" for k, v in other.items()),
        "row_value": value,
        "label": f"{label} ({FROM_SCRATCH})" if scratch else label,
        "params": dict(other),
        "from_scratch": scratch,
    }


def column_key(cols: str | None, value: Any) -> str:
    """The frame column of one grid column: "loss.pool_size=4", or "miou" for a 1-D grid."""
    return "miou" if cols is None else f"{cols}={value}"


def _fits(entry: dict[str, Any], ours: dict[str, Any], defaults: dict[str, Any]) -> bool:
    for key, value in entry.items():
        want = ours.get(key, defaults.get(key))
        if want is None or not same(value, want):
            return False
    return True


def paper_line(
    line: pd.Series,
    rows: str,
    cols: str | None,
    col_values: list[Any],
    tables: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The paper's cells for one of our lines (None when the paper has none of them)."""
    cells: dict[str, Any] = {}
    for value in col_values:
        ours = line["params"] | {rows: line["row_value"]} | ({cols: value} if cols else {})
        found = {
            float(entry["miou"])
            for table in tables
            for entry in table["rows"]
            if (entry["group"], entry["method"]) == (line["group"], line["method"])
            and _fits(entry["params"], ours, table.get("defaults", {}))
        }
        if len(found) == 1:
            key = column_key(cols, value)
            cells |= {key: found.pop(), f"{key}_std": math.nan, f"{key}_n": math.nan}
    if not cells:
        return None
    labels = {k: line[k] for k in ("group", "method", "setting", "row_value", "params")}
    return labels | {"source": "paper", "label": f"{line['label']} (paper)"} | cells


def _with_paper(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    axes: tuple[str, str | None],
    col_values: list[Any],
    split: str,
) -> tuple[pd.DataFrame, list[str]]:
    dataset = infer_dataset(scores)
    tables = paper_tables({"ablation"}, dataset, split)
    if not tables:
        return frame, [no_reference_note({"ablation"}, dataset, split)]
    lines: list[dict[str, Any]] = []
    for _, line in frame.iterrows():
        lines.append(dict(line))
        extra = paper_line(line, axes[0], axes[1], col_values, tables)
        lines += [extra] if extra else []
    if len(lines) == len(frame) and bool(frame["from_scratch"].all()):
        return frame, [
            f"No paper rows: every row here was trained from scratch, and the paper's models in "
            f"{where(tables)} started from ImageNet-pretrained weights, so the numbers are not "
            f"comparable."
        ]
    defaults = ", ".join(f"{k}={v}" for k, v in tables[0].get("defaults", {}).items())
    return pd.DataFrame(lines), [
        f"(paper) rows: as reported in the paper's {where(tables)}; blank = not reported. "
        f"Settings this experiment does not vary are assumed at the paper's ({defaults}).",
        *comparison_notes(tables, dataset, frame),
    ]


def _grid_columns(
    frame: pd.DataFrame, rows: str, cols: str | None, col_values: list[Any]
) -> list[Column]:
    names = short_keys([k for k in (rows, cols) if k])
    labels = [
        Column(key, header, "label")
        for key, header in (("group", "Group"), ("method", "Method"), ("setting", "Setting"))
        if frame[key].nunique() > 1 or (key == "setting" and frame[key].astype(bool).any())
    ]
    cells = [
        Column(column_key(cols, v), f"{names[cols]}={v}" if cols else "mIoU (%)", better="max")
        for v in col_values
    ]
    return [*labels, Column("label", names[rows], "label"), *cells]


def ablation_table(
    records: Records,
    *,
    rows: str | None = None,
    cols: str | None = None,
    runs: Runs = (),
    split: str | None = None,
    reference: bool = False,
    title: str | None = None,
    metric: IoUMetric = "miou",
    intervals: bool = True,
) -> ReportTable:
    """Table 3: mIoU (%) over a grid of two params keys (`rows` down, `cols` across; found
    automatically when the experiment varies exactly two, one for a 1-D grid), mean ± std
    over seeds. Rows without post-processing only; `runs` as for `methods_table`. With
    `intervals`, each cell's bootstrap interval is in `<cell>_lo`/`<cell>_hi` (CSV, JSON and
    the figure's error bars; the printed table keeps mean ± std)."""
    everything, scores, chosen = prepared(records, runs, split, metric)
    scores = scores[scores["postprocess"] == "none"].reset_index(drop=True)
    present = list(dict.fromkeys(k for p in scores["params"] for k in p))
    axes = choose_axes(varying_params(scores), present, rows, cols)
    agg = order_rows(over_seeds(scores, ["miou"], everything)).assign(source="ours")
    if intervals:
        add_cell_intervals(agg, scores, metric)
    frame, col_values = grid_frame(agg, *axes)
    extra: list[str] = []
    if reference and metric == "miou":
        frame, extra = _with_paper(frame, scores, axes, col_values, chosen)
    columns = _grid_columns(frame, axes[0], axes[1], col_values)
    section = "group" if frame["group"].nunique() > 1 else None
    expected = int(agg["runs"].max()) if len(agg) else 0
    shape = f"{axes[0]} × {axes[1]}" if axes[1] else axes[0]
    return ReportTable(
        kind="ablation",
        title=title or f"{experiment_name(scores)}: ablation {shape} on {chosen or 'no split yet'}",
        columns=tuple(columns),
        frame=frame,
        best=best_cells(frame, columns, section),
        notes=tuple(
            _notes(agg, scores, expected)
            + (interval_notes(agg, "miou", what=CELL_INTERVALS, paired=False) if intervals else [])
            + notes.metric_notes(scores, metric)
            + extra
        ),
        section=section,
        expected_n=expected,
        meta={"split": chosen, "rows": axes[0], "cols": axes[1], "metric": metric},
    )


def _notes(agg: pd.DataFrame, scores: pd.DataFrame, expected: int) -> list[str]:
    # missing runs are named per cell: "DeepLabv3 RMI (loss.pool=max, loss.pool_size=2)"
    settings = [", ".join(f"{k}={v}" for k, v in p.items()) for p in agg["params"]]
    cells = agg.assign(label=[f"{m} ({s})" for m, s in zip(agg["label"], settings, strict=True)])
    counts = sorted({int(n) for n in scores.loc[scores["evaluated"], "scored_classes"].dropna()})
    over = f" over {counts[0]} classes" if len(counts) == 1 else ""
    return [
        f"Cells: mIoU (%){over}, mean ± sample std over seeds ({expected} per cell); "
        "(n=k): only k seeds have a result.",
        "Bold: the best of our cells in each column (paper rows excluded).",
        notes.CHECKPOINT,
        *notes.scratch_notes(agg),
        *notes.missing_notes(cells),
    ]
