"""`rmi table` and `rmi db`: reading results out, and keeping the database's schema current."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import db as store
from rmi_cli.cli.app import app
from rmi_cli.cli.console import info, out_console
from rmi_cli.cli.options import DbOption, FormatOption, open_db
from rmi_cli.cli.tables import TableRequest, check_metric, table_requests, write_atomically
from rmi_cli.errors import UserError

db_app = typer.Typer(
    help="The result database: its schema version and upgrades.\n\nExample: rmi db current"
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
    metric: str = typer.Option(
        "miou", "--metric", help="miou, or boundary-iou (Boundary IoU, Cheng et al. 2021)."
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
    from rmi_cli.report import build_table, render  # pandas: only where a table is drawn

    check_metric(metric)
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
        options = request.options(
            runs, reference=reference, memory=memory, metric=metric, intervals=intervals
        )
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


def _plain(renderable: object) -> str:
    console = out_console().__class__(record=True, width=200, no_color=True)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()
