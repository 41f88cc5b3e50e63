"""`render(table, fmt)`: a `ReportTable` as rich, markdown, LaTeX, HTML, CSV or JSON.

rich, markdown, LaTeX and HTML print display cells ("78.71 ± 0.12", bold best, notes under the
table); CSV and JSON print raw numbers (a statistic as its mean, `_std` and `_n` columns), for
machines. Printing is the caller's job: these return strings or a rich renderable.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from rich.table import Table
from rich.text import Text

from rmi_cli.errors import UserError
from rmi_cli.report.kinds import FORMATS
from rmi_cli.report.table import Column, ReportTable, format_cell, is_missing, raw_columns

RAW_DECIMALS = 6  # far below any displayed precision, above float noise (79.30000000000001)
LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "Δ": r"$\Delta$", "×": r"$\times$", "—": "---",
}  # fmt: skip


def render(table: ReportTable, fmt: str) -> str | Table:
    """The table in `fmt` (one of `FORMATS`): a rich `Table` for "rich", else a string."""
    renderers: dict[str, Callable[[ReportTable], str | Table]] = {
        "rich": to_rich, "markdown": to_markdown, "latex": to_latex, "html": to_html,
        "csv": to_csv, "json": to_json,
    }  # fmt: skip
    if fmt not in renderers:
        raise UserError(f"unknown table format {fmt!r}; known: {', '.join(FORMATS)}")
    return renderers[fmt](table)


def _rows(table: ReportTable) -> range:
    return range(len(table.frame))


def _new_section(table: ReportTable, row: int) -> bool:
    """True where the section column changes (a rule goes above this row)."""
    if table.section is None or row == 0:
        return False
    frame = table.frame
    return frame.at[row, table.section] != frame.at[row - 1, table.section]


def _label(table: ReportTable, row: int, column: Column, text: str) -> str:
    # the section label is printed once per block, as the paper's tables do
    if column.key == table.section and row > 0 and not _new_section(table, row):
        return ""
    return text


def to_rich(table: ReportTable) -> Table:
    # Text, not strings: rich would read "[lo, hi]" in a note as markup and drop it
    out = Table(
        title=Text(table.title), caption=Text("\n".join(table.notes)), caption_justify="left"
    )
    for column in table.columns:
        # a row's name stays on one line; in a narrow terminal the numbers wrap instead
        out.add_column(
            Text(column.header),
            justify="right" if column.numeric else "left",
            no_wrap=not column.numeric,
        )
    for row in _rows(table):
        style = "dim italic" if table.is_paper(row) else ""
        cells = []
        for column in table.columns:
            text = _label(table, row, column, format_cell(table, row, column))
            bold = (row, column.key) in table.best
            # Text objects, not markup strings: labels such as "CE [6]" must print as written
            cells.append(Text(text, style="bold" if bold else ""))
        end = row + 1 < len(table.frame) and _new_section(table, row + 1)
        out.add_row(*cells, style=style, end_section=end)
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|")


def to_markdown(table: ReportTable) -> str:
    header = [_md_escape(c.header) for c in table.columns]
    align = ["---:" if c.numeric else ":---" for c in table.columns]
    lines = [f"**{_md_escape(table.title)}**", "", _md_line(header), _md_line(align)]
    for row in _rows(table):
        cells = []
        for column in table.columns:
            text = _md_escape(format_cell(table, row, column))
            if text and (row, column.key) in table.best:
                text = f"**{text}**"
            cells.append(text)
        lines.append(_md_line(cells))
    if table.notes:
        lines += ["", " ".join(table.notes)]
    return "\n".join(lines) + "\n"


def _md_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def latex_escape(text: str) -> str:
    """Text safe inside a LaTeX tabular: specials escaped, ± Δ × — spelt in LaTeX."""
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: ReportTable) -> str:
    spec = "".join("r" if c.numeric else "l" for c in table.columns)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(c.header) for c in table.columns) + r" \\",
        r"\midrule",
    ]
    for row in _rows(table):
        if _new_section(table, row):
            lines.append(r"\midrule")
        cells = []
        for column in table.columns:
            text = latex_escape(_label(table, row, column, format_cell(table, row, column)))
            bold = text and (row, column.key) in table.best
            cells.append(rf"\textbf{{{text}}}" if bold else text)
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.notes:
        lines.append(r"\par\smallskip\footnotesize " + latex_escape(" ".join(table.notes)))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(table: ReportTable) -> str:
    """A `<table class="rmi">` with its title as caption, numbers right-aligned (class "num"),
    bold best cells, paper rows of class "paper", a rule above each new section, and the notes
    in a `<p class="notes">` after it. No styles inline: the page's stylesheet sets them."""
    head = "".join(
        f'<th class="{"num" if c.numeric else "label"}">{html.escape(c.header)}</th>'
        for c in table.columns
    )
    rows = []
    for row in _rows(table):
        classes = [*(["paper"] if table.is_paper(row) else []),
                   *(["section"] if _new_section(table, row) else [])]  # fmt: skip
        cells = []
        for column in table.columns:
            text = html.escape(_label(table, row, column, format_cell(table, row, column)))
            if text and (row, column.key) in table.best:
                text = f"<strong>{text}</strong>"
            cells.append(f'<td class="{"num" if column.numeric else "label"}">{text}</td>')
        attribute = f' class="{" ".join(classes)}"' if classes else ""
        rows.append(f"<tr{attribute}>{''.join(cells)}</tr>")
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in table.notes)
    return (
        f'<table class="rmi"><caption>{html.escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n"
        + (f'<ul class="notes">{notes}</ul>\n' if notes else "")
    )


def _raw(table: ReportTable) -> pd.DataFrame:
    """The data columns; counts as integers, floats rounded off their binary noise."""
    frame = table.frame[[k for k in raw_columns(table) if k in table.frame]].copy()
    for key in frame.columns:
        if key == "n" or key.endswith("_n"):
            frame[key] = frame[key].astype("Float64").round().astype("Int64")
        elif pd.api.types.is_float_dtype(frame[key]):
            frame[key] = frame[key].round(RAW_DECIMALS)
    return frame


def to_csv(table: ReportTable) -> str:
    buffer = io.StringIO()
    _raw(table).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def _json_value(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        return None
    return value.item() if hasattr(value, "item") else value


def to_json(table: ReportTable) -> str:
    """{"title", "kind", "columns", "records" (raw numbers, null = missing), "best", "notes"}."""
    frame = _raw(table)
    records = [
        {key: _json_value(value) for key, value in record.items()}
        for record in frame.to_dict(orient="records")
    ]
    document = {
        "title": table.title,
        "kind": table.kind,
        "meta": {
            k: _json_value(v) if not isinstance(v, list) else v for k, v in table.meta.items()
        },
        "columns": [
            {"key": c.key, "header": c.header, "kind": c.kind, "decimals": c.decimals}
            for c in table.columns
        ],
        "records": records,
        "best": sorted([row, key] for row, key in table.best),
        "notes": list(table.notes),
    }
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
