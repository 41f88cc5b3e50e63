"""The ablation figure (paper Table 3 as a plot): mIoU against one grid key, one line per value
of the other, error bars from the cells' bootstrap intervals (mean ± std where a cell has none).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rmi_cli.report.figures.style import colour, save_figure
from rmi_cli.report.table import ReportTable, is_missing

PAPER = " (paper)"
FACTOR = "loss.pool_size"  # RMI's downsampling factor: the paper's Table 3 is about it
# what the paper calls the RMI loss's grid keys (Table 3)
KEY_NAMES = {"pool_size": "downsampling factor", "radius": "region size R", "pool": "way"}


@dataclass(frozen=True)
class Point:
    line: str
    x: Any
    mean: float
    below: float  # error bar length under the mean
    above: float
    paper: bool


def ablation_figure(table: ReportTable, path: str | Path, *, x: str | None = None) -> list[Path]:
    """Plot an `ablation_table`: mIoU (%) against the grid key `x` (default: the downsampling
    factor when it is one of the table's keys, else its columns key; the rows key transposes),
    one line per value of the other key; the paper's values dashed in the same colour. Writes
    PNG and SVG; returns their paths."""
    if table.kind != "ablation":
        raise ValueError(f"ablation_figure needs an ablation table, got a {table.kind!r} table")
    rows_key, cols_key = table.meta.get("rows"), table.meta.get("cols")
    x = x or (FACTOR if FACTOR in (rows_key, cols_key) else cols_key or rows_key)
    if x not in (rows_key, cols_key):
        raise ValueError(f"x={x!r} is neither of the table's keys ({rows_key}, {cols_key})")
    points = _points(table, transpose=cols_key is not None and x == rows_key)
    figure = Figure(figsize=(6.5, 3.8), layout="constrained")
    axes = figure.add_subplot()
    lines = list(dict.fromkeys(p.line.removesuffix(PAPER) for p in points))
    for line in dict.fromkeys(p.line for p in points):
        mine = [p for p in points if p.line == line]
        paper = mine[0].paper
        axes.errorbar(
            [str(p.x) for p in mine],
            [p.mean for p in mine],
            yerr=[[p.below for p in mine], [p.above for p in mine]],
            label=line,
            color=colour(lines.index(line.removesuffix(PAPER))),
            marker="s" if paper else "o",
            capsize=3,
            linestyle="--" if paper else "-",
            alpha=0.7 if paper else 1.0,
        )
    other = None if cols_key is None else (rows_key if x == cols_key else cols_key)
    axes.set_xlabel(_short(x))
    axes.set_ylabel(f"{_metric(table)} (%)")
    axes.set_title(table.title, fontsize="medium")
    axes.legend(fontsize="small", title=_short(other) if other else None)
    axes.grid(alpha=0.3)
    figure.supxlabel(_bars(table), fontsize="x-small", color="#555555")
    return save_figure(figure, path)


def _points(table: ReportTable, *, transpose: bool) -> list[Point]:
    """Every plotted cell: lines are the table's rows (x: its columns), with `transpose` its
    columns (x: its rows); a 1-D grid is one line over its rows (and the paper's)."""
    cells = [c for c in table.columns if c.kind == "stat"]
    one_d = table.meta.get("cols") is None
    points = []
    for row in range(len(table.frame)):
        label = str(table.frame.at[row, "label"])
        paper = table.is_paper(row)
        row_value = label.removesuffix(PAPER)
        for cell in cells:
            mean = _value(table, row, cell.key)
            if math.isnan(mean):
                continue
            below, above = _error(table, row, cell.key, mean)
            col_value = _strip(cell.header)
            if one_d:
                line, x = ("paper" if paper else "ours"), row_value
            elif transpose:
                line, x = col_value + (PAPER if paper else ""), row_value
            else:
                line, x = label, col_value
            points.append(Point(line, x, mean, below, above, paper))
    return points


def _error(table: ReportTable, row: int, key: str, mean: float) -> tuple[float, float]:
    low, high = _value(table, row, f"{key}_lo"), _value(table, row, f"{key}_hi")
    if not (math.isnan(low) or math.isnan(high)):
        return max(0.0, mean - low), max(0.0, high - mean)
    std = _value(table, row, f"{key}_std")
    return (0.0, 0.0) if math.isnan(std) else (std, std)


def _bars(table: ReportTable) -> str:
    has_intervals = any(k.endswith("_lo") for k in table.frame.columns)
    if has_intervals:
        return "Error bars: 95% bootstrap interval over images (and seeds); ± std where none."
    return "Error bars: ± sample std over seeds."


def _metric(table: ReportTable) -> str:
    return "Boundary mIoU" if table.meta.get("metric") == "boundary-iou" else "mIoU"


def _short(key: str | None) -> str:
    if key is None:
        return ""
    short = key.rsplit(".", 1)[-1]
    return f"{short} ({KEY_NAMES[short]})" if short in KEY_NAMES else short


def _strip(x: Any) -> Any:
    """ "pool_size=4" -> "4": the axis label names the key."""
    return x.split("=", 1)[1] if isinstance(x, str) and "=" in x else x


def _value(table: ReportTable, row: int, key: str) -> float:
    value = table.frame.at[row, key] if key in table.frame else math.nan
    return math.nan if is_missing(value) else float(value)
