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
) -> None:
    """Train CE, BCE and RMI models on built-in synthetic scenes on the CPU (a few minutes),
    post-process the CE model with a dense CRF, store everything, and print the paper-style
    tables. Running it again prints the stored tables at once.

    Example: rmi demo --db demo.db
    """
    database = open_db(db)
    outcome = runner.demo(database, manifest=manifest, overrides=overrides or [], runs_dir=runs)
    print_tables(runner.tables(database, outcome.plan.name), "rich")
    info(f"results are in {database.url}; try: rmi table -e {outcome.plan.name} --format markdown")
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
