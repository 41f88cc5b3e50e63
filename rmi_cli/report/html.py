"""`write_report`: one self-contained `index.html` for an experiment (tables with intervals,
every figure, the protocol and environment of every number, the commands that made them).

The page opens from disk without a server: the stylesheet is inline and each figure's PNG is
embedded as a data URI; the PNG and SVG files are also written to `figures/` beside the page (for
papers), linked relatively. Everything is written to a staging folder first and moved into place
at the end, the page last, so a failure leaves no half-written report.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmi_cli.atomic import atomic_write_text
from rmi_cli.report import build_table, render
from rmi_cli.report.figures.ablation import ablation_figure
from rmi_cli.report.figures.curves import curves_figure
from rmi_cli.report.figures.qualitative import Qualitative, qualitative_figure
from rmi_cli.report.page import PAGE_CSS, environment_section, evaluations_section
from rmi_cli.report.table import ReportTable
from rmi_cli.stored import EvaluationRecord, RunRecord, TrainingPoint

Records = Sequence[EvaluationRecord]


@dataclass(frozen=True)
class TableSpec:
    """One table of the page: `build_table(kind, records, **options)`, and the command that
    prints it."""

    kind: str
    options: dict[str, Any]
    command: str


@dataclass(frozen=True)
class ReportInputs:
    """What the page shows; the runner or CLI gathers it (the report layer reads nothing)."""

    experiment: str
    records: Records  # evaluation rows (`rmi_cli.db.evaluation_rows`)
    runs: Sequence[RunRecord] = ()  # run rows (`rmi_cli.db.run_rows`)
    tables: Sequence[TableSpec] = ()
    points: Sequence[TrainingPoint] = ()  # training reports (`rmi_cli.db.metric_points`)
    qualitative: Qualitative | None = None
    qualitative_command: str = ""
    missing_figures: Sequence[str] = ()  # one line per figure that could not be drawn, and why
    description: str = ""
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # run -> config
    commands: Sequence[str] = ()  # the commands that produced the results
    generated: str = ""  # who wrote the page, when


@dataclass(frozen=True)
class DrawnFigure:
    title: str
    png: Path
    svg: Path
    command: str


def write_report(inputs: ReportInputs, out_dir: str | Path) -> Path:
    """Write `out_dir/index.html` and `out_dir/figures/`; returns the page's path."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".rmi-report-", dir=target))
    try:
        tables = [(spec, build_table(spec.kind, inputs.records, **spec.options))
                  for spec in inputs.tables]  # fmt: skip
        figures = _figures(inputs, [t for _, t in tables], staging / "figures")
        page = _page(inputs, tables, figures)
        (target / "figures").mkdir(exist_ok=True)
        for drawn in figures:
            for path in (drawn.png, drawn.svg):
                path.replace(target / "figures" / path.name)
        # a new page gets the umask's mode (readable by others as a rule), a replaced one keeps its
        atomic_write_text(target / "index.html", page)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target / "index.html"


def _figures(inputs: ReportInputs, tables: list[ReportTable], folder: Path) -> list[DrawnFigure]:
    drawn: list[DrawnFigure] = []
    name = inputs.experiment
    if inputs.points:
        png, svg = curves_figure(inputs.points, folder / "curves.png", title=f"{name}: training")
        drawn.append(DrawnFigure("Training loss and learning rate", png, svg,
                                 f"rmi figure curves -e {name}"))  # fmt: skip
    for index, table in enumerate(t for t in tables if t.kind == "ablation"):
        x = (
            "loss.pool_size"
            if "loss.pool_size" in (table.meta["rows"], table.meta["cols"])
            else None
        )
        png, svg = ablation_figure(table, folder / f"ablation-{index}.png", x=x)
        drawn.append(DrawnFigure(table.title, png, svg, f"rmi figure ablation -e {name}"))
    if inputs.qualitative is not None:
        png, svg = qualitative_figure(inputs.qualitative, folder / "qualitative.png")
        drawn.append(DrawnFigure(inputs.qualitative.title or "Qualitative comparison", png, svg,
                                 inputs.qualitative_command))  # fmt: skip
    return drawn


def _page(
    inputs: ReportInputs, tables: list[tuple[TableSpec, ReportTable]], figures: list[DrawnFigure]
) -> str:
    title = f"rmi report: {inputs.experiment}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{PAGE_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="lead">{_e(inputs.description)}</p>' if inputs.description else "",
        f'<p class="meta">{_e(inputs.generated)}</p>' if inputs.generated else "",
        '<nav><a href="#tables">Tables</a> · <a href="#figures">Figures</a> · '
        '<a href="#protocol">Protocol and environment</a> · <a href="#runs">Runs</a> · '
        '<a href="#commands">Commands</a></nav></header><main>',
        '<section id="tables"><h2>Tables</h2>',
        *(_table(spec, table) for spec, table in tables),
        "</section>",
        '<section id="figures"><h2>Figures</h2>',
        *(_figure(drawn) for drawn in figures),
        *(f'<p class="missing">{_e(line)}</p>' for line in inputs.missing_figures),
        "</section>",
        evaluations_section(inputs.records),
        environment_section(inputs.records),
        _runs(inputs.runs, inputs.configs),
        _commands(inputs, tables, figures),
        "</main></body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _table(spec: TableSpec, table: ReportTable) -> str:
    rendered = render(table, "html")
    assert isinstance(rendered, str)
    return f'<div class="table">{rendered}<p class="cmd"><code>{_e(spec.command)}</code></p></div>'


def _figure(drawn: DrawnFigure) -> str:
    data = base64.b64encode(drawn.png.read_bytes()).decode("ascii")
    links = (
        f'<a href="figures/{drawn.svg.name}">SVG</a> · <a href="figures/{drawn.png.name}">PNG</a>'
    )
    return (
        f'<figure><img alt="{_e(drawn.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(drawn.title)} ({links})"
        + (f"<br><code>{_e(drawn.command)}</code>" if drawn.command else "")
        + "</figcaption></figure>"
    )


def _runs(runs: Sequence[RunRecord], configs: Mapping[str, Mapping[str, Any]]) -> str:
    items = []
    for run in runs:
        config = configs.get(run.name)
        body = f"<pre>{_e(json.dumps(config, indent=2, sort_keys=True))}</pre>" if config else ""
        summary = f"{run.name}: {run.kind} {run.method}, {run.status}"
        items.append(f"<details><summary>{_e(summary)}</summary>{body}</details>")
    return (
        '<section id="runs"><h2>Runs and their resolved configurations</h2>'
        + "".join(items)
        + "</section>"
    )


def _commands(
    inputs: ReportInputs, tables: list[tuple[TableSpec, ReportTable]], figures: list[DrawnFigure]
) -> str:
    lines = [
        "# the results",
        *inputs.commands,
        "# the tables",
        *(spec.command for spec, _ in tables),
        "# the figures",
        *(drawn.command for drawn in figures if drawn.command),
        "# this page",
        f"rmi report -e {inputs.experiment} -o <folder>",
    ]
    return f'<section id="commands"><h2>Commands</h2><pre>{_e(chr(10).join(lines))}</pre></section>'


def _e(text: object) -> str:
    return html.escape(str(text))
