"""Alembic, driven from code: schema check at start-up, creation at head, `rmi db upgrade`.

The migration scripts live in the repository's top-level `migrations/` folder, found relative to
this file (never the current folder). The version table is `rmi_schema_version`, so the database
can sit beside another tool's `alembic_version`. SQLite migrations run in batch mode (copy the
table, move it back) because SQLite's ALTER TABLE cannot change or drop most things.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select

from rmi_cli.db.database import Database, damaged_file
from rmi_cli.db.schema import TABLE_NAMES, Base
from rmi_cli.errors import DatabaseError, SchemaOutOfDate
from rmi_cli.resources import migrations_dir

# The Alembic scripts: None means where rmi ships them (`rmi_cli.resources`); tests point it at
# a copy to add revisions.
MIGRATIONS_DIR: Path | None = None
VERSION_TABLE = "rmi_schema_version"
# Key of the PostgreSQL advisory lock that serialises concurrent creations and upgrades.
_PG_MIGRATION_LOCK = 0x524D49  # "RMI"


@dataclass(frozen=True)
class UpgradeReport:
    """What `upgrade` did: nothing when `from_rev == to_rev`."""

    from_rev: str | None  # None: the database was empty
    to_rev: str
    backup_path: Path | None  # the SQLite copy taken before migrating, if any

    @property
    def changed(self) -> bool:
        return self.from_rev != self.to_rev


def migrations_folder() -> Path:
    """The Alembic scripts folder in use (env.py, versions/)."""
    return MIGRATIONS_DIR if MIGRATIONS_DIR is not None else migrations_dir()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for `migrations/`; env.py migrates `connection` when given."""
    folder = migrations_folder()
    config = Config()
    # ConfigParser interpolates `%`, which may appear in a folder name.
    config.set_main_option("script_location", str(folder).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration scripts in {migrations_folder() / 'versions'}")
    return head


def revisions() -> list[str]:
    """Every revision this code knows, oldest first."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return [script.revision for script in reversed(list(scripts.walk_revisions()))]


def current_revision(db: Database) -> str | None:
    """The revision the database is at; None when it has no rmi schema yet."""
    with db.engine.connect() as conn:
        return _read_revision(conn)


def ensure_schema(db: Database, *, create: bool) -> None:
    """Accept a database at head, create an empty one at head, refuse anything else."""
    with db.engine.connect() as conn:
        current = _read_revision(conn)
        ours = _rmi_tables(conn)
    head = head_revision()
    if current is None and ours and not db.is_sqlite:
        # Two reads, two snapshots: another process creating the schema may have committed
        # between them. Look again under the migration lock, which waits for that process.
        with _migration_connection(db) as conn:
            current, ours = _read_revision(conn), _rmi_tables(conn)
    if current == head:
        return
    _refuse_unusable(db, current, ours)
    if current is None:
        if not create:
            raise DatabaseError(
                f"{db.url}: no rmi tables in this database; check --db or RMI_DB "
                f"(commands that queue runs create them)"
            )
        migrate_to(db, "head")
        return
    raise SchemaOutOfDate(
        f"{db.url}: the database schema is at revision {current}, this version of rmi needs "
        f"{head}; run `rmi db upgrade`"
    )


def upgrade(db: Database, *, backup: bool = True) -> UpgradeReport:
    """Migrate to head, copying an SQLite file first (`<file>.bak-<from>-<UTC time>`)."""
    head = head_revision()
    with _migration_connection(db) as conn:
        # Read again under the migration lock: another process may have upgraded meanwhile.
        current = _read_revision(conn)
        if current == head:
            return UpgradeReport(current, head, None)
        _refuse_unusable(db, current, _rmi_tables(conn))
        copy = None
        if backup and db.path is not None and current is not None:
            _check_intact(db.path, conn)
            copy = backup_sqlite(db.path, current)
        command.upgrade(alembic_config(conn), "head")
    return UpgradeReport(current, head, copy)


def migrate_to(db: Database, revision: str = "head") -> None:
    """Run the migrations up to `revision`, no checks, no backup (creation and tests)."""
    with _migration_connection(db) as conn:
        command.upgrade(alembic_config(conn), revision)


def backup_sqlite(path: Path, revision: str) -> Path:
    """A consistent copy of an SQLite file (the backup API also copies what is still in the
    WAL, which a plain file copy would miss), written under a temporary name, then renamed."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.bak-{revision}-{stamp}")
    partial = target.with_name(f"{target.name}.partial")
    source = sqlite3.connect(path)
    try:
        destination = sqlite3.connect(partial)
        try:
            source.backup(destination)
        finally:
            destination.close()
    finally:
        source.close()
    partial.replace(target)
    return target


def schema_diff(db: Database) -> list[Any]:
    """Alembic's autogenerate differences between the models and the database (empty: same)."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        return list(compare_metadata(context, Base.metadata))


def _read_revision(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _rmi_tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) & set(TABLE_NAMES)


def _refuse_unusable(db: Database, current: str | None, ours: set[str]) -> None:
    if current is None and ours:
        raise DatabaseError(
            f"{db.url}: has rmi tables ({', '.join(sorted(ours))}) but no {VERSION_TABLE} table, "
            f"so it was not created by rmi; use a new database"
        )
    if current is not None and current not in revisions():
        raise DatabaseError(
            f"{db.url}: the database schema is at revision {current}, which this version of rmi "
            f"does not know (its newest is {head_revision()}): a newer rmi wrote it; upgrade rmi "
            f"(pip install -U rmi-cli) or use another database"
        )


@contextmanager
def _migration_connection(db: Database) -> Iterator[Connection]:
    """One write transaction for a whole migration, holding the writers' lock throughout."""
    with db.write_engine.connect() as conn:
        if db.is_sqlite:
            # Batch mode drops and recreates tables; with foreign keys on, dropping a parent
            # table would cascade-delete its children's rows. The pragma is a no-op inside a
            # transaction, so it is set on the raw connection before BEGIN.
            sqlite = cast(sqlite3.Connection, conn.connection.driver_connection)
            sqlite.execute("PRAGMA foreign_keys = OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(select(func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
                yield conn
                if db.is_sqlite:
                    _check_foreign_keys(db, conn)
        finally:
            if db.is_sqlite and not conn.invalidated:
                sqlite = cast(sqlite3.Connection, conn.connection.driver_connection)
                sqlite.execute("PRAGMA foreign_keys = ON")


def _check_intact(path: Path, conn: Connection) -> None:
    """Refuse to migrate (and to back up) a damaged file: the copy would be damaged too, and
    would pass for the good backup the message about damage points to."""
    problems = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise damaged_file(path, problems[0] if problems else "quick_check found nothing")


def _check_foreign_keys(db: Database, conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise DatabaseError(
            f"{db.url}: the migration would leave {len(broken)} rows with dangling foreign keys "
            f"in {', '.join(tables)}; nothing was changed; please report this as a bug"
        )
