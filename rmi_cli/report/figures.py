"""Figures of report tables (matplotlib, Agg canvas: no display and no global pyplot state)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rmi_cli.atomic import atomic_write_bytes
from rmi_cli.report.table import ReportTable, is_missing

PAPER = " (paper)"


def ablation_figure(table: ReportTable, path: str | Path) -> Path:
    """Plot an `ablation_table` as mIoU (mean ± std over seeds) against the grid's columns,
    one line per grid row (a 1-D grid: one line over its rows); the paper's values dashed in
    the same colour. Written atomically as a PNG."""
    if table.kind != "ablation":
        raise ValueError(f"ablation_figure needs an ablation table, got a {table.kind!r} table")
    figure = Figure(figsize=(6.5, 3.8), layout="constrained")
    axes = figure.add_subplot()
    cells = [c.key for c in table.columns if c.kind == "stat"]
    if len(cells) > 1:
        _lines_over_columns(axes, table, cells)
    else:
        _line_over_rows(axes, table, cells[0])
    axes.set_ylabel("mIoU (%)")
    axes.set_title(table.title, fontsize="medium")
    axes.legend(fontsize="small")
    target = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    # Through symlinks, keeping the replaced file's mode, like every export.
    atomic_write_bytes(target, buffer.getvalue())
    return target


def _lines_over_columns(axes: Axes, table: ReportTable, cells: list[str]) -> None:
    colours: dict[str, str] = {}
    x = list(range(len(cells)))
    for row in range(len(table.frame)):
        label = str(table.frame.at[row, "label"])
        paper = table.is_paper(row)
        colour = colours.setdefault(label.removesuffix(PAPER), f"C{len(colours) % 10}")
        means = [_value(table, row, key) for key in cells]
        stds = [_value(table, row, f"{key}_std") for key in cells]
        _plot(axes, x, means, stds, label=label, colour=colour, paper=paper)
    axes.set_xticks(x, [table.column(key).header for key in cells])
    axes.set_xlabel(table.column("label").header + " (lines)")


def _line_over_rows(axes: Axes, table: ReportTable, key: str) -> None:
    for paper, colour in ((False, "C0"), (True, "C1")):
        rows = [r for r in range(len(table.frame)) if table.is_paper(r) == paper]
        if not rows:
            continue
        x = [str(table.frame.at[r, "label"]).removesuffix(PAPER) for r in rows]
        means = [_value(table, r, key) for r in rows]
        stds = [_value(table, r, f"{key}_std") for r in rows]
        _plot(axes, x, means, stds, label="paper" if paper else "ours", colour=colour, paper=paper)
    axes.set_xlabel(table.column("label").header)


def _plot(
    axes: Axes,
    x: list,
    means: list[float],
    stds: list[float],
    *,
    label: str,
    colour: str,
    paper: bool,
) -> None:
    errors = [0.0 if math.isnan(s) else s for s in stds]
    style = {"linestyle": "--", "alpha": 0.7} if paper else {"linestyle": "-"}
    axes.errorbar(x, means, yerr=errors, label=label, color=colour, marker="o", capsize=3, **style)


def _value(table: ReportTable, row: int, key: str) -> float:
    value = table.frame.at[row, key] if key in table.frame else math.nan
    return math.nan if is_missing(value) else float(value)
