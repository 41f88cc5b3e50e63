"""A database given as an open `Database` or as where to find one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rmi_cli import db as store

# An open database, or an SQLite path / SQLAlchemy URL (None: $RMI_DB, else ./rmi.db).
DatabaseTarget = store.Database | str | Path | None


@contextmanager
def opened(target: DatabaseTarget) -> Iterator[store.Database]:
    """`target` itself when it is open; else opened (created at head when missing) for the
    block and closed after it. Callers that check their inputs first open it after the checks,
    so that bad input creates no database."""
    if isinstance(target, store.Database):
        yield target
        return
    with store.open_database(target) as database:
        yield database
