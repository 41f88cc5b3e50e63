"""`rmi demo`: the quickstart experiment end to end on the CPU, then its tables."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import runner
from rmi_cli.cli.console import info
from rmi_cli.cli.options import DbOption, RunsDirOption, open_db
from rmi_cli.cli.table_views import print_tables


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    manifest: Path | None = typer.Option(
        None,
        help="Manifest holding the quickstart experiment (default: the one rmi ships).",
        show_default=False,
    ),
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
    database = open_db(db)
    outcome = runner.demo(database, manifest=manifest, runs_dir=runs)
    name = outcome.plan.name
    print_tables(runner.tables(database, name), "rich")
    info(f"results are in {database.url}; try: rmi table -e {name} --format markdown")
    if not outcome.report.failed:
        page = runner.write_report(database, name, report, runs_dir=runs)
        info(f"the report: {page.resolve()} (open it in a browser)")
    outcome.report.check()
