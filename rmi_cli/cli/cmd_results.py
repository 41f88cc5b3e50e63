"""`rmi table` and `rmi db`: reading results out, and keeping the database's schema current."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import db as store
from rmi_cli import runner
from rmi_cli.cli.console import info, out_console
from rmi_cli.cli.options import DbOption, FormatOption, open_db
from rmi_cli.cli.table_views import print_tables
from rmi_cli.records import IoUMetric
from rmi_cli.report.kinds import Format, TableKind


def register(app: typer.Typer) -> None:
    app.command()(table)
    db_app = typer.Typer(
        help="The result database: its schema version and upgrades; moving results between "
        "databases.\n\nExample: rmi db current"
    )
    db_app.command("upgrade")(db_upgrade)
    db_app.command("current")(db_current)
    db_app.command("export")(db_export)
    db_app.command("merge")(db_merge)
    app.add_typer(db_app, name="db")


def table(
    experiment: str = typer.Option(..., "--experiment", "-e", help="Experiment name."),
    kind: TableKind | None = typer.Option(
        None,
        "--kind",
        "-k",
        help="methods (Table 1), per-class (Tables 2/4), ablation (Table 3).",
        show_default=False,
    ),
    fmt: Format = FormatOption,
    reference: bool = typer.Option(False, "--reference", help="Add the paper's numbers."),
    baseline: str | None = typer.Option(
        None, help="The method the delta column compares with (default: CE)."
    ),
    split: str | None = typer.Option(None, help="Split (default: the experiment's only one)."),
    rows: str | None = typer.Option(None, help="Ablation: params key down the rows."),
    cols: str | None = typer.Option(None, help="Ablation: params key across the columns."),
    memory: bool = typer.Option(False, "--memory", help="Methods: add peak eval memory."),
    metric: IoUMetric = typer.Option(
        "miou", "--metric", help="The IoU shown: miou, or boundary-iou (Cheng et al. 2021)."
    ),
    intervals: bool = typer.Option(
        True,
        "--intervals/--no-intervals",
        help="Paired bootstrap 95% intervals of each Δ (from the stored per-image counts).",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to a file."),
    db: str | None = DbOption,
) -> None:
    """Render the paper-style tables of an experiment from the database: mean ± std over seeds,
    the delta to a baseline with its paired bootstrap interval, the best value per column in
    bold, and the measurement protocol beneath every time and memory figure. Without --kind: the
    tables the experiment's manifest declares (its `tables:` entries), else those its results
    suggest.

    Example: rmi table -e camvid-table4 --kind per-class --reference --format markdown
    """
    database = open_db(db, create=False, read_only=True)
    single = f"--format {fmt}" if fmt in ("csv", "json") else None
    tables = runner.tables(
        database, experiment, kind=kind, split=split, rows=rows, cols=cols, baseline=baseline,
        reference=reference, memory=memory, single=single, metric=metric, intervals=intervals,
    )  # fmt: skip
    print_tables(tables, fmt, output)


def db_upgrade(db: str | None = DbOption) -> None:
    """Upgrade the database schema to this version of rmi (an SQLite file is backed up first).

    Example: rmi db upgrade --db results/rmi.db
    """
    with store.open_database(db, create=False, check_schema=False) as database:
        report = store.upgrade(database)
    if not report.changed:
        info(f"{database.url}: already at the current schema ({report.to_rev})")
        return
    backup = f"; backup: {report.backup_path}" if report.backup_path else ""
    info(f"{database.url}: upgraded {report.from_rev or 'empty'} -> {report.to_rev}{backup}")


def db_current(db: str | None = DbOption) -> None:
    """Print the database's schema revision and the one this version of rmi needs.

    Example: rmi db current
    """
    with store.open_database(db, create=False, check_schema=False, read_only=True) as database:
        current = store.current_revision(database)
    head = store.head_revision()
    if current == head:
        state = "up to date"
    elif current is not None and current not in store.revisions():
        state = "a newer rmi wrote it: upgrade rmi (pip install -U rmi-cli)"
    else:
        state = "run `rmi db upgrade`"
    out_console().print(f"{current or 'empty'} (this rmi needs {head}: {state})", markup=False)


def db_export(
    experiment: str = typer.Option(..., "--experiment", "-e", help="Experiment name."),
    output: Path = typer.Option(..., "--output", "-o", help="The results file to write."),
    db: str | None = DbOption,
) -> None:
    """Write an experiment, its runs and everything stored about them to a portable results
    file (JSON), for a database this machine cannot reach: `rmi db merge` reads it there.

    Example: rmi db export -e camvid-table4 -o node7.rmi.json
    """
    document = runner.export_results(open_db(db, create=False, read_only=True), experiment, output)
    info(f"wrote {output}: experiment {experiment}, {len(document.runs)} run(s)")


def db_merge(
    files: list[Path] = typer.Argument(..., help="Results files written by `rmi db export`."),
    db: str | None = DbOption,
) -> None:
    """Merge results files into the database, in one transaction: runs matched by config hash
    (merging again changes nothing), experiments and their tables included; a run done in both
    with different results, or any other conflict, refuses the whole merge in one line.

    Example: rmi db merge node7.rmi.json node8.rmi.json --db postgresql://host/rmi
    """
    report = runner.merge_files(db, files)
    info(
        f"merged {len(files)} file(s): {len(report.added)} run(s) added, "
        f"{len(report.completed)} completed, {len(report.unchanged)} already here; "
        f"experiments {', '.join(dict.fromkeys(report.experiments)) or 'none'}"
    )
