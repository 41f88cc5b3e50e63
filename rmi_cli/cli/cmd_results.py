"""`rmi table` and `rmi db`: reading results out, and keeping the database's schema current."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import db as store
from rmi_cli.cli.app import app
from rmi_cli.cli.console import info, out_console
from rmi_cli.cli.options import DbOption, FormatOption, open_db
from rmi_cli.cli.tables import TableRequest, table_requests, write_atomically
from rmi_cli.errors import UserError

db_app = typer.Typer(
    help="The result database: its schema version and upgrades; moving results between "
    "databases.\n\nExample: rmi db current"
)
app.add_typer(db_app, name="db")


@app.command()
def table(
    experiment: str = typer.Option(..., "--experiment", "-e", help="Experiment name."),
    kind: str | None = typer.Option(
        None, "--kind", "-k", help="methods (Table 1), per-class (Tables 2/4), ablation (Table 3)."
    ),
    fmt: str = FormatOption,
    reference: bool = typer.Option(False, "--reference", help="Add the paper's numbers."),
    baseline: str | None = typer.Option(
        None, help="The method the delta column compares with (default: CE)."
    ),
    split: str | None = typer.Option(None, help="Split (default: the experiment's only one)."),
    rows: str | None = typer.Option(None, help="Ablation: params key down the rows."),
    cols: str | None = typer.Option(None, help="Ablation: params key across the columns."),
    memory: bool = typer.Option(False, "--memory", help="Methods: add peak eval memory."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to a file."),
    db: str | None = DbOption,
) -> None:
    """Render the paper-style tables of an experiment from the database: mean ± std over seeds,
    the delta to a baseline, the best value per column in bold, and the measurement protocol
    beneath every time and memory figure. Without --kind: the tables the experiment's manifest
    declares (its `tables:` entries), else those its results suggest.

    Example: rmi table -e camvid-table4 --kind per-class --reference --format markdown
    """
    from rmi_cli.report import build_table, render  # pandas: only where a table is drawn

    database = open_db(db, create=False, read_only=True)
    records = store.evaluation_rows(database, experiment=experiment)
    runs = store.run_rows(database, experiment=experiment)
    methods = sorted({str(row["method"]) for row in [*records, *runs] if row.get("method")})
    if baseline is not None and methods and baseline not in methods:
        raise UserError(
            f"--baseline {baseline!r}: experiment {experiment!r} has no such method; its "
            f"methods: {', '.join(methods)}"
        )
    flags = TableRequest(kind or "", split, rows, cols, baseline)
    requests = table_requests(store.experiment_tables(database, experiment), records, flags, kind)
    if fmt in ("csv", "json") and len(requests) > 1:
        # Two CSV tables (or two JSON documents) one after the other parse as neither.
        names = " or ".join(dict.fromkeys(request.kind for request in requests))
        raise UserError(
            f"--format {fmt} writes one table and experiment {experiment!r} has "
            f"{len(requests)}; choose one with --kind ({names})"
        )
    texts = []
    for index, request in enumerate(requests):
        options = request.options(runs, reference=reference, memory=memory)
        rendered = render(build_table(request.kind, records, **options), fmt)
        if output is not None:
            texts.append(rendered if isinstance(rendered, str) else _plain(rendered))
        elif isinstance(rendered, str):
            # The text ends with its own newline (a CSV file must not end with an empty row);
            # one blank line separates tables.
            out_console().print(("\n" if index else "") + rendered, markup=False, end="")
        else:
            out_console().print(rendered)
    if output is not None:
        write_atomically(output, "\n".join(texts))
        info(f"wrote {output}")


@db_app.command("upgrade")
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


@db_app.command("current")
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


@db_app.command("export")
def db_export(
    experiment: str = typer.Option(..., "--experiment", "-e", help="Experiment name."),
    output: Path = typer.Option(..., "--output", "-o", help="The results file to write."),
    db: str | None = DbOption,
) -> None:
    """Write an experiment, its runs and everything stored about them to a portable results
    file (JSON), for a database this machine cannot reach: `rmi db merge` reads it there.

    Example: rmi db export -e camvid-table4 -o node7.rmi.json
    """
    from rmi_cli.db.export import export_experiment
    from rmi_cli.db.portable import write_results

    database = open_db(db, create=False, read_only=True)
    document = export_experiment(database, experiment)
    write_results(document, output)
    info(f"wrote {output}: experiment {experiment}, {len(document.runs)} run(s)")


@db_app.command("merge")
def db_merge(
    files: list[Path] = typer.Argument(..., help="Results files written by `rmi db export`."),
    db: str | None = DbOption,
) -> None:
    """Merge results files into the database, in one transaction: runs matched by config hash
    (merging again changes nothing), experiments and their tables included; a run done in both
    with different results, or any other conflict, refuses the whole merge in one line.

    Example: rmi db merge node7.rmi.json node8.rmi.json --db postgresql://host/rmi
    """
    from rmi_cli.db.merge import merge_results
    from rmi_cli.db.portable import read_results

    documents = [(path, read_results(path)) for path in files]
    database = open_db(db)
    report = merge_results(database, documents)
    info(
        f"{database.url}: merged {len(files)} file(s): {len(report.added)} run(s) added, "
        f"{len(report.completed)} completed, {len(report.unchanged)} already here; "
        f"experiments {', '.join(dict.fromkeys(report.experiments)) or 'none'}"
    )


def _plain(renderable: object) -> str:
    console = out_console().__class__(record=True, width=200, no_color=True)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()
