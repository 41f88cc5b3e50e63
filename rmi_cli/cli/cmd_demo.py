"""Getting started: `rmi demo` (the quickstart end to end on the CPU, then its tables) and
`rmi init` (a starter manifest to edit)."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import runner
from rmi_cli.cli.console import info
from rmi_cli.cli.options import DbOption, RunsDirOption, SetOption, open_db
from rmi_cli.cli.table_views import print_tables


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(init)


def demo(
    manifest: Path | None = typer.Option(
        None,
        help="Manifest holding the quickstart experiment (default: the one rmi ships).",
        show_default=False,
    ),
    overrides: list[str] | None = SetOption,
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
    outcome = runner.demo(database, manifest=manifest, overrides=overrides or [], runs_dir=runs)
    name = outcome.plan.name
    print_tables(runner.tables(database, name), "rich")
    info(f"results are in {database.url}; try: rmi table -e {name} --format markdown")
    if not outcome.report.failed:
        page = runner.write_report(database, name, report, runs_dir=runs)
        info(f"the report: {page.resolve()} (open it in a browser)")
    outcome.report.check()


def init(
    path: Path | None = typer.Argument(
        None,
        help="Where to write it (a folder: experiments.yaml in it). Default: ./experiments.yaml.",
        show_default=False,
    ),
) -> None:
    """Write a commented starter manifest: the quickstart experiment, and a template for your
    own dataset in a folder (images/, labels/, classes.txt, train.txt, val.txt). An existing
    file is never overwritten.

    Example: rmi init && rmi ablate experiments.yaml -e quickstart --dry-run
    """
    written = runner.init_manifest(path)
    info(f"wrote {written}; try: rmi ablate {written} -e quickstart --dry-run")
