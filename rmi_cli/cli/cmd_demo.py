"""`rmi demo`: the quickstart experiment end to end on the CPU, then its tables."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import db as store
from rmi_cli.cli.app import app
from rmi_cli.cli.cmd_report import write_experiment_report
from rmi_cli.cli.console import info, out_console
from rmi_cli.cli.drain import drain, exit_for, worker_options
from rmi_cli.cli.options import DbOption, RunsDirOption, open_db
from rmi_cli.cli.queueing import enqueue_plan
from rmi_cli.cli.tables import TableRequest
from rmi_cli.cli.views import print_enqueued
from rmi_cli.manifest import load_manifest

SHIPPED = Path(__file__).resolve().parents[2] / "experiments.yaml"
EXPERIMENT = "quickstart"


@app.command()
def demo(
    manifest: Path = typer.Option(SHIPPED, help="Manifest holding the quickstart experiment."),
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
    report: Path = typer.Option(
        Path("report"), "--report", help="Folder for the quickstart's HTML report."
    ),
) -> None:
    """Train CE, BCE and RMI models on built-in synthetic scenes on the CPU (a few minutes),
    post-process the CE model with a dense CRF, store everything, print the paper-style tables
    and write the HTML report (tables with intervals, figures). Running it again prints the
    stored tables at once.

    Example: rmi demo --db demo.db
    """
    plan = load_manifest(manifest).plan(EXPERIMENT)
    database = open_db(db)
    print_enqueued(enqueue_plan(database, plan))
    outcome = drain(database, worker_options(database, runs), experiment=EXPERIMENT, wait=True)
    records = store.evaluation_rows(database, experiment=EXPERIMENT)
    runs_rows = store.run_rows(database, experiment=EXPERIMENT)
    from rmi_cli.report import build_table, render  # pandas: only where a table is drawn

    for spec in plan.tables:
        request = TableRequest.from_spec(spec.model_dump(mode="json"))
        table = build_table(request.kind, records, **request.options(runs_rows))
        out_console().print(render(table, "rich"))
    info(f"results are in {database.url}; try: rmi table -e {EXPERIMENT} --format markdown")
    if not outcome.failed:
        page = write_experiment_report(database, EXPERIMENT, report, runs_root=runs)
        info(f"the report: {page.resolve()} (open it in a browser)")
    exit_for(outcome)
