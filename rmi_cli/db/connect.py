"""Open the result database: where it is, how to connect, and the checks made before any write.

`open_database()` resolves the target (argument, else `$RMI_DB`, else `rmi.db` in the current
folder), refuses what it cannot use with one `DatabaseError` line before touching anything, and
creates a new database at the head revision. The returned `Database` hands out sessions and runs
write transactions with SQLite's lock contention retried.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import cast
from urllib.parse import quote

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from rmi_cli.db.database import (
    Database,
    sqlite_begin,
    sqlite_connect,
    sqlite_damage_check,
    where,
)
from rmi_cli.db.migrate import ensure_schema
from rmi_cli.db.server import server_connect_args, server_error_check
from rmi_cli.errors import DatabaseError

ENV_VAR = "RMI_DB"
DEFAULT_FILE = "rmi.db"
SQLITE_HEADER = b"SQLite format 3\x00"

__all__ = ["DEFAULT_FILE", "ENV_VAR", "Database", "open_database", "resolve_target"]


def resolve_target(url_or_path: str | Path | None = None) -> tuple[URL, Path | None]:
    """The SQLAlchemy URL to connect to, and the SQLite file behind it (None for a server or an
    in-memory database). A value with `://` is a URL, anything else a file path."""
    target = str(url_or_path or os.environ.get(ENV_VAR) or DEFAULT_FILE)
    if "://" not in target:
        path = Path(target).expanduser().absolute()
        return URL.create("sqlite", database=str(path)), path
    try:
        url = make_url(target)
    except ArgumentError:
        raise DatabaseError(
            f"{target}: not a database URL; give a file path or a URL such as "
            f"sqlite:///rmi.db or postgresql+psycopg://user@host/rmi"
        ) from None
    url = _default_postgres_driver(url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return url, None
    # Fix a relative path now, so that a later change of the current folder cannot move it.
    path = Path(url.database).expanduser().absolute()
    return url.set(database=str(path)), path


def open_database(
    url_or_path: str | Path | None = None,
    *,
    create: bool = True,
    check_schema: bool = True,
    read_only: bool = False,
) -> Database:
    """Open (and when `create`, create at head) the result database, checking its schema.

    Raises `SchemaOutOfDate` when the schema is older than this code (run `rmi db upgrade`) and
    `DatabaseError` for anything else that makes it unusable; in both cases nothing was written.
    `check_schema=False` skips the schema check and creation (what `rmi db upgrade` needs).
    `read_only` (commands that only read): an SQLite file this process may not write (a shared
    results file, a read-only mount) is opened as an immutable snapshot instead of refused.

    Example: `with open_database("results/rmi.db") as db: ...`
    """
    url, path = resolve_target(url_or_path)
    existed = path is not None and path.exists()
    snapshot = read_only and path is not None and path.is_file() and not _writable(path)
    if snapshot:
        _check_readable(path)  # type: ignore[arg-type]
        url = _snapshot_url(path)  # type: ignore[arg-type]
    elif path is not None:
        _check_sqlite_file(path, create=create)
    db = Database(_make_engine(url, path, reader=read_only), path=path)
    try:
        _probe(db)
        if check_schema:
            ensure_schema(db, create=create and not snapshot)
            if not snapshot:
                _use_wal(db)
    except BaseException:
        db.close()
        if path is not None and not existed:
            _remove_new_file(path)
        raise
    return db


def _default_postgres_driver(url: URL) -> URL:
    # SQLAlchemy's default PostgreSQL driver is psycopg2; the project's optional extra installs
    # psycopg 3, so a bare postgresql:// URL uses whichever of the two is installed.
    if url.drivername != "postgresql":
        return url
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return url.set(drivername="postgresql+psycopg")
    return url


def _writable(path: Path) -> bool:
    """The file, and the folder SQLite keeps its -wal and -shm files in, are writable."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _snapshot_url(path: Path) -> URL:
    """An SQLite URI that reads `path` without writing anything.

    Without a -wal file (or an empty one) everything is in the file: it is opened immutable, so
    SQLite creates no -wal/-shm files and takes no locks. Changes still in a -wal file are read
    through its -shm file (`mode=ro`; SQLite creates the -shm file if the folder is writable); a
    -wal file without one in a read-only folder cannot be read, which is one line saying so.
    """
    wal, shm = (path.with_name(f"{path.name}-{suffix}") for suffix in ("wal", "shm"))
    query = {"mode": "ro", "uri": "true"}
    if not wal.is_file() or wal.stat().st_size == 0:
        query["immutable"] = "1"
    elif not shm.is_file() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise DatabaseError(
            f"{path}: its latest changes are in {wal.name}, which SQLite reads only with write "
            f"access to the folder or an existing {shm.name}; open it once where it is writable "
            f"(any rmi command folds the log back into the file) or copy both files elsewhere"
        )
    # A URI path is percent-decoded: encode it, or a `#` or `?` in a folder name would cut it.
    return URL.create("sqlite", database=f"file:{quote(str(path))}", query=query)


def _check_readable(path: Path) -> None:
    if not os.access(path, os.R_OK):
        raise DatabaseError(f"{path}: the database file is not readable; check its permissions")
    _check_header(path)


def _check_sqlite_file(path: Path, *, create: bool) -> None:
    """Refuse, without touching anything, a file or folder SQLite could not use."""
    folder = path.parent
    if path.is_dir():
        raise DatabaseError(
            f"{path}: is a folder, not a database file; give a file path such as {path / 'rmi.db'}"
        )
    if not path.exists():
        if not create:
            raise DatabaseError(
                f"{path}: no database file here; check --db or {ENV_VAR} (commands that queue "
                f"runs create it)"
            )
        if not folder.is_dir():
            raise DatabaseError(
                f"{path}: the folder {folder} does not exist; create it first or choose another "
                f"path"
            )
    else:
        _check_readable(path)
        if not os.access(path, os.W_OK):
            raise DatabaseError(
                f"{path}: the database file is read-only; make it writable (chmod u+w {path}) "
                f"or copy it somewhere writable and point --db at the copy"
            )
    if not os.access(folder, os.W_OK | os.X_OK):
        # WAL mode keeps two files beside the database (-wal, -shm); SQLite creates them on
        # first use, so the folder must be writable even when the file itself is.
        raise DatabaseError(
            f"{path}: the folder {folder} is not writable, and SQLite needs to create "
            f"{path.name}-wal and {path.name}-shm beside the database; make the folder writable "
            f"or move the database"
        )


def _check_header(path: Path) -> None:
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise DatabaseError(
            f"{path}: not an SQLite database (the file does not start with the SQLite header); "
            f"point --db at an rmi database or at a new file name"
        )


def _make_engine(url: URL, path: Path | None = None, *, reader: bool = False) -> Engine:
    if url.get_backend_name() != "sqlite":
        try:
            engine = create_engine(
                url, pool_pre_ping=True, connect_args=server_connect_args(url, reader=reader)
            )
        except (NoSuchModuleError, ModuleNotFoundError) as exc:
            raise DatabaseError(
                f"{where(url)}: the database driver is not installed ({exc}); for PostgreSQL "
                f"install psycopg (pip install 'rmi-cli[postgres]')"
            ) from None
        event.listen(engine, "handle_error", server_error_check(where(url), url))
        return engine
    memory = url.database in (None, "", ":memory:")
    # The sqlite3 `timeout` is SQLite's busy timeout: a writer waits that long for the lock
    # before giving up with "database is locked". check_same_thread is off (SQLAlchemy's own
    # default for files): the pool hands a connection to one thread at a time, but a worker's
    # heartbeat thread and its main thread take turns with the same pooled connections, which
    # sqlite3's same-thread check turns into ProgrammingError.
    engine = create_engine(
        url,
        connect_args={"timeout": Database.BUSY_TIMEOUT_S, "check_same_thread": False},
        poolclass=StaticPool if memory else None,
    )
    event.listen(engine, "connect", sqlite_connect)
    event.listen(engine, "begin", sqlite_begin)
    if path is not None:
        event.listen(engine, "handle_error", sqlite_damage_check(path))
    return engine


def _probe(db: Database) -> None:
    """Connect once (read only) so that a bad file, a server that is down or wrong credentials
    fail here with one line rather than deep inside the first query."""
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar_one()
            if db.is_sqlite:
                # Parsing the schema catches a damaged header or schema page (the engine's
                # damage check turns it into its line); damage deeper in the file shows when a
                # query reaches it, and is reported the same way then.
                conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one()
    except DBAPIError as exc:
        first = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        advice = (
            "check the file and that its folder is readable"
            if db.is_sqlite
            else "check the URL, that the server is running, and the credentials"
        )
        raise DatabaseError(f"{db.url}: cannot open the database ({first}); {advice}") from None


def _use_wal(db: Database) -> None:
    """Switch the file to write-ahead logging (persistent, so once per file is enough).

    WAL lets readers (`rmi status`, `rmi table`) work while a worker writes. It is set only once
    the schema checks passed, because it rewrites the file header.
    """
    if db.path is None:
        return
    raw = db.engine.raw_connection()
    try:
        sqlite = cast(sqlite3.Connection, raw.driver_connection)
        deadline = time.monotonic() + Database.BUSY_TIMEOUT_S
        while sqlite.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            try:
                sqlite.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as error:
                # The switch needs the only lock on the file, and SQLite answers "locked" at
                # once, without its busy handler, while another process holds a transaction
                # (another worker creating or checking the schema of a new file): try again.
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        raw.close()


def _remove_new_file(path: Path) -> None:
    """Opening failed after SQLite created `path`: leave the folder as we found it.

    Only an empty file is removed: a failed creation was rolled back to zero bytes, while a
    non-empty file means another process created the database meanwhile, and it is theirs.
    """
    if not path.exists() or path.stat().st_size > 0:
        return
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        leftover.unlink(missing_ok=True)
