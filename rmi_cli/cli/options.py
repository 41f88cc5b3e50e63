"""Options shared by several commands, and how they resolve."""

from __future__ import annotations

import typer

from rmi_cli import db as store
from rmi_cli.errors import UserError

DB_HELP = (
    "Result database: an SQLite file or any SQLAlchemy URL (postgresql://...). "
    "Default: $RMI_DB, else ./rmi.db."
)
RUNS_HELP = "Folder for run directories (checkpoints, probabilities). Default: $RMI_RUNS_DIR, else runs/ beside the SQLite file."  # noqa: E501

DbOption = typer.Option(None, "--db", help=DB_HELP, show_default=False)
RunsDirOption = typer.Option(None, "--runs-dir", help=RUNS_HELP, show_default=False)
SetOption = typer.Option(
    None,
    "--set",
    metavar="KEY=VALUE",
    help="Override a value in every run: --set train.iterations=100 (repeatable).",
    show_default=False,
)
WaitOption = typer.Option(
    False,
    "--wait",
    help="When another worker holds the run, wait for it (taking it over if it stops) "
    "instead of saying who holds it and exiting.",
)
ManifestArgument = typer.Argument(
    ..., help="The experiments manifest (YAML).", show_default=False, metavar="MANIFEST"
)
ExperimentOption = typer.Option(
    ..., "--experiment", "-e", help="The experiment's name in the manifest.", show_default=False
)
FormatOption = typer.Option("rich", "--format", "-f", help="Output format.")


# Databases this command opened; `close_databases` closes them when the command ends.
_opened: list[store.Database] = []


def open_db(target: str | None, *, create: bool = True, read_only: bool = False) -> store.Database:
    """Open the database (with `create`, create it at head when missing); refuses an
    out-of-date schema. Commands that only read pass `create=False`, so that a mistyped --db
    is an error instead of a new, empty file, and `read_only`, so that a file they may not
    write is still read."""
    database = store.open_database(target, create=create, read_only=read_only)
    _opened.append(database)
    return database


def close_databases() -> None:
    """Close what `open_db` opened: SQLite folds its WAL back into the file, and a caller that
    runs commands in-process (tests, notebooks) keeps no connection pool alive."""
    while _opened:
        _opened.pop().close()


def open_existing(target: str | None) -> store.Database | None:
    """The database when it exists (a server always does), else None: a dry run creates no
    file."""
    _, path = store.resolve_target(target)
    if path is not None and not path.exists():
        return None
    return open_db(target)


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    """`"1,5,10"` -> (1, 5, 10), with a one-line error naming the option."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(
            f"{option}: expected comma-separated integers such as 1,5,10; found {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise UserError(f"{option}: expected positive integers such as 1,5,10; found {text!r}")
    return values
