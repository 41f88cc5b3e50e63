"""The `Database` handle: an engine, sessions, and write transactions that survive contention.

SQLite serialises writers with a whole-file lock. Two things keep concurrent workers from
failing with "database is locked": write transactions start with `BEGIN IMMEDIATE`, so a worker
takes the write lock before it reads the rows it will change (a deferred transaction that
reads, then writes, can fail at once with SQLITE_BUSY when another writer got in between, and the
busy timeout cannot help it), and `transaction()` retries the rare busy errors that escape the
busy timeout with exponential backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, Select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from rmi_cli.errors import DatabaseError

T = TypeVar("T")

BEGIN_OPTION = "rmi_sqlite_begin"  # execution option read by `sqlite_begin`
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
# PostgreSQL: serialization failure and deadlock; both mean "run the transaction again".
_PG_RETRY_STATES = frozenset({"40001", "40P01"})
_SQLITE_USER_ERRORS = {
    "attempt to write a readonly database": "the database is read-only; make it writable",
    "database or disk is full": "the disk is full; free some space",
    "disk I/O error": "a disk I/O error occurred; check the disk and the file",
    "unable to open database file": "SQLite cannot open the file; check the path and folder",
}


def where(url: URL) -> str:
    """A URL fit for messages (password hidden)."""
    return url.render_as_string(hide_password=True)


def sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """Per-connection SQLite settings (pool "connect" event)."""
    # Let SQLAlchemy emit BEGIN itself (see `sqlite_begin`): the sqlite3 module's legacy
    # transaction control would skip BEGIN before SELECT and DDL, breaking both the
    # read-then-write claim and transactional migrations.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite and the setting is per connection.
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def sqlite_begin(conn: Connection) -> None:
    """Emit BEGIN, or BEGIN IMMEDIATE for write transactions (engine "begin" event)."""
    immediate = conn.get_execution_options().get(BEGIN_OPTION) == "immediate"
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_retryable(exc: DBAPIError) -> bool:
    """Lock contention (SQLite) or a serialization failure / deadlock (PostgreSQL)."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state in _PG_RETRY_STATES:
        return True
    return isinstance(exc, OperationalError) and any(m in str(exc.orig) for m in _SQLITE_BUSY)


def get_or_insert(session: Session, existing: Select[T], new: Callable[[], T]) -> tuple[T, bool]:
    """The row `existing` selects, else `new()` inserted; and whether it was inserted.

    A concurrent insert of the same unique key (possible on PostgreSQL; SQLite's writers are
    serialised) is absorbed by the savepoint: the other transaction's row is returned.
    """
    row = session.scalars(existing).first()
    if row is not None:
        return row, False
    try:
        with session.begin_nested():
            row = new()
            session.add(row)
    except IntegrityError:
        return session.scalars(existing).one(), False
    return row, True


class Database:
    """An open result database: `session()` for reads, `transaction()` for writes."""

    BUSY_TIMEOUT_S = 30.0
    RETRIES = 8
    FIRST_BACKOFF_S = 0.05
    MAX_BACKOFF_S = 2.0

    def __init__(self, engine: Engine, *, path: Path | None) -> None:
        self.engine = engine
        self.path = path  # the SQLite file, None for a server or an in-memory database
        self.url = str(path) if path is not None else where(engine.url)
        # Same pool, same events; only the BEGIN that `sqlite_begin` emits differs.
        self.write_engine = engine.execution_options(**{BEGIN_OPTION: "immediate"})
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error.

        Use `write=True` for anything that writes (or use `transaction`, which also retries).
        """
        factory = self._write_sessions if write else self._sessions
        with factory() as session:
            try:
                with session.begin():
                    yield session
            except OperationalError as exc:
                raise self._user_error(exc) or exc from None

    def transaction(self, work: Callable[[Session], T], *, write: bool = True) -> T:
        """Run `work(session)` in one transaction, again from the start on lock contention."""
        backoff = self.FIRST_BACKOFF_S
        for attempt in range(self.RETRIES):
            try:
                with self.session(write=write) as session:
                    return work(session)
            except DBAPIError as exc:
                if not is_retryable(exc):
                    raise
                if attempt == self.RETRIES - 1:
                    raise DatabaseError(
                        f"{self.url}: the database stayed locked by other processes through "
                        f"{self.RETRIES} tries; try again, and look for a stuck process holding it"
                    ) from None
            time.sleep(backoff * (1.0 + random.random()))
            backoff = min(backoff * 2.0, self.MAX_BACKOFF_S)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close every pooled connection (SQLite then checkpoints the WAL into the file)."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"

    def _user_error(self, exc: OperationalError) -> DatabaseError | None:
        """The one-line error for SQLite failures that are the user's to fix, else None."""
        text = str(exc.orig)
        for needle, advice in _SQLITE_USER_ERRORS.items():
            if needle in text:
                return DatabaseError(f"{self.url}: {advice} ({text})")
        return None
