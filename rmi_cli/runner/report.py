"""`rmi report`: one HTML page per experiment. Everything it shows is gathered here from the
database (and, for the qualitative figure, from the runs' files): tables to build, training
curves, configurations, the commands that made the results; `rmi_cli.report.html` draws it."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmi_cli import __version__
from rmi_cli import db as store
from rmi_cli.errors import UserError
from rmi_cli.run_folder import runs_root
from rmi_cli.runner.figures import qualitative_inputs
from rmi_cli.stored import EvaluationRecord, RunRecord

if TYPE_CHECKING:  # the report layer imports pandas: only where a report is written
    from rmi_cli.report.html import ReportInputs, TableSpec
    from rmi_cli.report.requests import TableRequest

# the comparison the paper is about, when the experiment has both
PREFERRED = ("CE", "RMI")


def write_report(
    database: store.Database,
    experiment: str,
    output: Path,
    *,
    runs_dir: Path | None = None,
    qualitative: bool = True,
    images: int = 4,
) -> Path:
    """Write the experiment's report to `output/index.html` (and `output/figures/`); returns
    the page's path. The qualitative figure runs the checkpoints of two runs on `images` images
    unless their saved probabilities hold them."""
    from rmi_cli.report.html import write_report as write_page

    if output.exists() and not output.is_dir():
        raise UserError(f"--output {output}: is a file; give a folder for index.html")
    inputs = report_inputs(
        database, experiment, runs_dir=runs_root(runs_dir, database.path), out_dir=output,
        qualitative=qualitative, images=images,
    )  # fmt: skip
    return write_page(inputs, output)


def report_inputs(
    database: store.Database,
    experiment: str,
    *,
    runs_dir: Path,
    out_dir: Path,
    qualitative: bool = True,
    images: int = 4,
) -> ReportInputs:
    """The `ReportInputs` of `experiment` (see `rmi_cli.report.html`)."""
    from rmi_cli.report.html import ReportInputs
    from rmi_cli.report.requests import table_requests

    about = store.experiment_about(database, experiment)
    records = store.evaluation_rows(database, experiment=experiment)
    runs = store.run_rows(database, experiment=experiment)
    requests = table_requests(store.experiment_tables(database, experiment), records, None, None)
    points = [p for p in store.metric_points(database, experiment) if p.method]
    if qualitative:
        figure, command, missing = _qualitative(database, experiment, records, runs_dir, images)
    else:
        figure, command, missing = None, "", ["Qualitative figure: left out (--no-qualitative)."]
    if not points:
        missing.append("Training curves: no training metrics stored for this experiment.")
    return ReportInputs(
        experiment=experiment,
        records=records,
        runs=runs,
        tables=table_specs(experiment, requests, runs, records),
        points=points,
        qualitative=figure,
        qualitative_command=command,
        missing_figures=missing,
        description=about.description or "",
        configs=store.run_configs(database, experiment),
        commands=result_commands(experiment, about.manifest_path),
        generated=(
            f"Written by rmi {__version__} on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with "
            f"`rmi report -e {experiment} -o {shlex.quote(str(out_dir))}` from {database.url}."
        ),
    )


def _qualitative(
    database: store.Database,
    experiment: str,
    records: Sequence[EvaluationRecord],
    runs_dir: Path,
    images: int,
) -> tuple[Any, str, list[str]]:
    """(the figure's data or None, its command, why it is missing)."""
    refs = comparison(records)
    if len(refs) < 2:
        return None, "", ["Qualitative figure: needs two evaluated methods to compare."]
    command = (
        f"rmi figure qualitative -e {experiment} --runs {','.join(refs)} "
        f"--pick biggest-gain --images {images}"
    )
    try:
        figure = qualitative_inputs(
            database, experiment, refs, count=images, pick="biggest-gain", split=None,
            runs_dir=runs_dir,
        )  # fmt: skip
    except UserError as error:  # e.g. the checkpoints live on another machine
        return None, command, [f"Qualitative figure: not drawn ({error})."]
    return figure, command, []


def comparison(records: Sequence[EvaluationRecord]) -> list[str]:
    """The two methods the qualitative figure compares: CE and RMI when evaluated, else the
    first two evaluated methods."""
    methods = list(
        dict.fromkeys(r.method for r in records if r.postprocess == "none" and r.miou is not None)
    )
    if all(m in methods for m in PREFERRED):
        return list(PREFERRED)
    return methods[:2]


def table_specs(
    experiment: str,
    requests: list[TableRequest],
    runs: Sequence[RunRecord],
    records: Sequence[EvaluationRecord],
) -> list[TableSpec]:
    """The experiment's tables (as `rmi table` prints them), plus the first non-ablation table
    again with the boundary IoU when any evaluation has one."""
    from rmi_cli.report.html import TableSpec

    specs = []
    for request in requests:
        specs.append(TableSpec(request.kind, request.options(runs), _command(experiment, request)))
    boundary = any(r.boundary_miou is not None for r in records)
    plain = next((r for r in requests if r.kind != "ablation"), None)
    if boundary and plain is not None:
        options = plain.options(runs, metric="boundary-iou")
        command = _command(experiment, plain) + " --metric boundary-iou"
        specs.append(TableSpec(plain.kind, options, command))
    return specs


def _command(experiment: str, request: TableRequest) -> str:
    parts = ["rmi table -e", experiment, "-k", request.kind]
    for flag, value in (("--split", request.split), ("--rows", request.rows),
                        ("--cols", request.cols), ("--baseline", request.baseline)):  # fmt: skip
        if value:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def result_commands(experiment: str, manifest: str | None) -> list[str]:
    if manifest:
        return [f"rmi ablate {shlex.quote(manifest)} -e {experiment}   # queue, train, CRF, eval"]
    return [f"# {experiment} was queued without a manifest (rmi train --set ...)"]
