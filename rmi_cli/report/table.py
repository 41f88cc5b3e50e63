"""`ReportTable`: what every table builder returns and every renderer reads.

A table is a DataFrame of raw numbers plus a description of its columns. A statistic column
`key` (a mean over seeds) comes with `key_std` and `key_n` columns in the frame, so the CSV and
JSON renderers can write raw numbers while the others write "78.71 ± 0.12". A column with an
interval has `key_lo` and `key_hi` (and `key_why`, the reason where there is none) beside it:
"+1.57 [+0.80, +2.31]", or "+1.57 [n/a]".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

ColumnKind = Literal["label", "stat", "number"]
MISSING = "—"
PLUS_MINUS = "±"


@dataclass(frozen=True)
class Column:
    """One displayed column. `better` says which way is best (for bold), None: never bold."""

    key: str
    header: str
    kind: ColumnKind = "stat"
    decimals: int = 2
    better: Literal["max", "min"] | None = None
    show_std: bool = True  # stat columns: "mean ± std" (True) or the mean alone
    signed: bool = False  # deltas print their sign: "+1.57"
    applies: str | None = None  # a bool frame column; where False the cell is blank, not "—"
    interval: bool = False  # print `key_lo`/`key_hi` as "[lo, hi]" after the value

    @property
    def numeric(self) -> bool:
        return self.kind != "label"


@dataclass(frozen=True, eq=False)
class ReportTable:
    """A rendered-to-be table: raw values in `frame` (rows in display order, index 0..n-1).

    `frame["source"]` is "ours" or "paper"; a paper row's empty cell means "not reported" and
    prints blank, ours prints "—" (explained in `notes`). `best` holds (row, column key) pairs to
    print bold. `section` names the label column whose changes separate blocks of rows.
    `expected_n`: stat cells with fewer seeds than this print "(n=k)" after the value.
    """

    kind: str
    title: str
    columns: tuple[Column, ...]
    frame: pd.DataFrame
    best: frozenset[tuple[int, str]] = frozenset()
    notes: tuple[str, ...] = ()
    section: str | None = None
    expected_n: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def is_paper(self, row: int) -> bool:
        return "source" in self.frame and self.frame.at[row, "source"] == "paper"

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def format_number(value: float, decimals: int, *, signed: bool = False) -> str:
    if round(value, decimals) == 0:
        value = 0.0  # "-0.00" would claim a sign the rounded value does not have
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def format_cell(
    table: ReportTable, row: int, column: Column, *, pm: str = PLUS_MINUS, dash: str = MISSING
) -> str:
    """The display text of one cell (no markup: renderers add bold and escaping)."""
    value = table.frame.at[row, column.key]
    if column.kind == "label":
        return "" if is_missing(value) else str(value)
    if is_missing(value):
        not_applicable = column.applies is not None and not table.frame.at[row, column.applies]
        return "" if table.is_paper(row) or not_applicable else dash
    text = format_number(float(value), column.decimals, signed=column.signed)
    if column.interval:
        text += _interval_text(table, row, column)
    if column.kind != "stat":
        return text
    std = table.frame.at[row, f"{column.key}_std"]
    if column.show_std and not is_missing(std):
        text += f" {pm} {format_number(float(std), column.decimals)}"
    n = table.frame.at[row, f"{column.key}_n"]
    if table.expected_n and not is_missing(n) and 0 < int(n) < table.expected_n:
        text += f" (n={int(n)})"
    return text


def _interval_text(table: ReportTable, row: int, column: Column) -> str:
    frame = table.frame
    low, high = (frame.at[row, f"{column.key}_{end}"] for end in ("lo", "hi"))
    if not (is_missing(low) or is_missing(high)):
        ends = (format_number(float(v), column.decimals, signed=column.signed) for v in (low, high))
        return " [{}, {}]".format(*ends)
    why = frame.at[row, f"{column.key}_why"] if f"{column.key}_why" in frame else None
    return " [n/a]" if isinstance(why, str) and why else ""


def raw_columns(table: ReportTable) -> list[str]:
    """Frame columns that carry data (label, values, and each statistic's std and n)."""
    keys: list[str] = []
    if "source" in table.frame and "source" not in [c.key for c in table.columns]:
        keys.append("source")
    for column in table.columns:
        keys.append(column.key)
        if column.kind == "stat":
            keys += [f"{column.key}_std", f"{column.key}_n"]
        if f"{column.key}_lo" in table.frame:
            keys += [f"{column.key}_lo", f"{column.key}_hi"]
    return keys
