"""Opening the database: resolution, creation at head, and every refusal leaving files untouched."""

from __future__ import annotations

import ctypes
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import MetaData, Table, create_engine, insert, select, update
from sqlalchemy.exc import IntegrityError

import rmi_cli.db.migrate as migrate
from rmi_cli.db import (
    VERSION_TABLE,
    Database,
    head_revision,
    open_database,
    resolve_target,
)
from rmi_cli.db.schema import Membership
from rmi_cli.errors import DatabaseError, SchemaOutOfDate


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in `folder` with its bytes: the "nothing changed" oracle."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def refuse(target: Path, create: bool = True) -> str:
    """Open `target`, expect a DatabaseError, and check the folder did not change."""
    before = snapshot(target.parent) if target.parent.is_dir() else None
    with pytest.raises(DatabaseError) as caught:
        open_database(str(target), create=create)
    after = snapshot(target.parent) if target.parent.is_dir() else None
    assert after == before
    message = str(caught.value)
    assert "\n" not in message
    return message


def set_version(path: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        table = Table(VERSION_TABLE, MetaData(), autoload_with=conn)
        conn.execute(update(table).values(version_num=revision))
    engine.dispose()


def test_new_file_is_created_at_head_with_wal_and_foreign_keys(db_path: Path) -> None:
    with open_database(str(db_path)) as db:
        assert db.path == db_path
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        with pytest.raises(IntegrityError), db.session(write=True) as session:
            session.add(Membership(experiment_id=41, run_id=42, name="orphan"))
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = raw.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    raw.close()
    assert version == [(head_revision(),)]
    assert {"runs", "experiments", "evaluations", "class_iou"} <= tables
    assert "alembic_version" not in tables


def test_reopening_a_database_at_head_changes_nothing(db_path: Path) -> None:
    open_database(str(db_path)).close()
    before = snapshot(db_path.parent)
    open_database(str(db_path), create=False).close()
    assert snapshot(db_path.parent) == before


def test_target_resolution_argument_then_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RMI_DB", raising=False)
    assert resolve_target(None)[1] == tmp_path / "rmi.db"
    monkeypatch.setenv("RMI_DB", "from-env.db")
    assert resolve_target(None)[1] == tmp_path / "from-env.db"
    assert resolve_target("arg.db")[1] == tmp_path / "arg.db"
    url, path = resolve_target("sqlite:///sub/x.db")
    assert path == tmp_path / "sub" / "x.db"
    url, path = resolve_target("postgresql://u:secret@host/rmi")
    assert path is None
    assert url.get_backend_name() == "postgresql"


def test_relative_path_is_fixed_at_open_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_database("rel.db") as db:
        monkeypatch.chdir("/")
        assert db.path == tmp_path / "rel.db"
        assert db.transaction(lambda s: s.scalar(select(1))) == 1


def test_not_a_database_file(tmp_path: Path) -> None:
    target = tmp_path / "notes.db"
    target.write_text("these are my notes\n")
    assert refuse(target) == (
        f"{target}: not an SQLite database (the file does not start with the SQLite header); "
        f"point --db at an rmi database or at a new file name"
    )


def test_corrupt_sqlite_file(db_path: Path) -> None:
    open_database(str(db_path)).close()
    data = bytearray(db_path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    db_path.write_bytes(bytes(data))
    assert refuse(db_path).startswith(
        f"{db_path}: the database file is damaged (database disk image is malformed); stop the "
        f"rmi processes using it, then restore a backup (rmi db upgrade keeps rmi.db.bak-* beside "
        f"it; none here) or salvage what is readable: sqlite3 {db_path} .recover | sqlite3 "
    )


def test_folder_instead_of_file(tmp_path: Path) -> None:
    assert refuse(tmp_path).startswith(f"{tmp_path}: is a folder, not a database file")


def test_missing_folder_is_not_created(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "rmi.db"
    assert refuse(target) == (
        f"{target}: the folder {target.parent} does not exist; create it first or choose another "
        f"path"
    )
    assert not target.parent.exists()


def test_missing_file_without_create(db_path: Path) -> None:
    assert refuse(db_path, create=False).startswith(f"{db_path}: no database file here")
    assert not db_path.exists()


def test_newer_schema_is_refused_unchanged(db_path: Path) -> None:
    open_database(str(db_path)).close()
    set_version(db_path, "9999")
    assert refuse(db_path) == (
        f"{db_path}: the database schema is at revision 9999, which this version of rmi does "
        f"not know (its newest is {head_revision()}): a newer rmi wrote it; upgrade rmi "
        f"(pip install -U rmi-cli) or use another database"
    )


def test_older_schema_is_refused_naming_the_upgrade_command(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_database(str(db_path)).close()
    head, known = head_revision(), migrate.revisions()
    monkeypatch.setattr(migrate, "head_revision", lambda: "t900")
    monkeypatch.setattr(migrate, "revisions", lambda: [*known, "t900"])
    before = snapshot(db_path.parent)
    with pytest.raises(SchemaOutOfDate) as caught:
        open_database(str(db_path))
    assert str(caught.value) == (
        f"{db_path}: the database schema is at revision {head}, this version of rmi needs t900; "
        f"run `rmi db upgrade`"
    )
    assert snapshot(db_path.parent) == before


def test_rmi_tables_without_version_table(db_path: Path) -> None:
    open_database(str(db_path)).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"DROP TABLE {VERSION_TABLE}")
    raw.commit()
    raw.close()
    assert "so it was not created by rmi; use a new database" in refuse(db_path)


def test_another_tools_alembic_table_is_left_alone(db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
    raw.execute("INSERT INTO alembic_version VALUES ('their-rev')")
    raw.commit()
    raw.close()
    open_database(str(db_path)).close()
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        theirs = Table("alembic_version", MetaData(), autoload_with=conn)
        assert conn.execute(select(theirs.c.version_num)).all() == [("their-rev",)]
        ours = Table(VERSION_TABLE, MetaData(), autoload_with=conn)
        assert conn.execute(select(ours.c.version_num)).scalar() == head_revision()
    engine.dispose()


def test_failed_creation_leaves_no_file(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate_for_real = migrate.command.upgrade

    def fails_after_migrating(config: Config, revision: str) -> None:
        migrate_for_real(config, revision)
        raise RuntimeError("interrupted before commit")

    monkeypatch.setattr(migrate.command, "upgrade", fails_after_migrating)
    with pytest.raises(RuntimeError, match="interrupted before commit"):
        open_database(str(db_path))
    assert list(db_path.parent.iterdir()) == []


def test_foreign_keys_survive_pool_reconnects(db: Database) -> None:
    db.engine.dispose()  # the next connection is a new one: the connect event must fire again
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with pytest.raises(IntegrityError):
        db.transaction(lambda s: s.execute(insert(Membership.__table__).values(
            experiment_id=1, run_id=2, name="x", method="", group_label="", params_json={},
            position=0)))  # fmt: skip


# --- read-only files and folders --------------------------------------------------------------

OPEN_SCRIPT = """
import sys
from rmi_cli.db import open_database
from rmi_cli.errors import DatabaseError
try:
    open_database(sys.argv[1]).close()
except DatabaseError as exc:
    print(exc)
    sys.exit(3)
"""


def _drop_file_capabilities() -> None:
    # Root ignores file permissions through CAP_DAC_OVERRIDE (and CAP_DAC_READ_SEARCH,
    # CAP_FOWNER). Dropped from the bounding set before exec, the child runs as root whose file
    # accesses are checked like anyone's: a 0444 file or a 0555 folder is read-only to it.
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2, 3):  # DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def open_without_write_permission(target: Path) -> str:
    """Open `target` in a subprocess to which chmod applies (see `_drop_file_capabilities`)."""
    preexec = _drop_file_capabilities if os.geteuid() == 0 else None
    try:
        result = subprocess.run(
            [sys.executable, "-c", OPEN_SCRIPT, str(target)],
            capture_output=True,
            text=True,
            preexec_fn=preexec,
            timeout=60,
        )
    except subprocess.SubprocessError as exc:
        reason = f"running as root and cannot drop CAP_DAC_OVERRIDE ({exc})"
        pytest.skip(f"{reason}: chmod cannot make a file read-only for root")
    assert result.returncode == 3, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.fixture
def locked_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder whose permissions the test changes, restored so pytest can clean it up."""
    folder = tmp_path / "locked"
    folder.mkdir()
    yield folder
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o700)


def test_read_only_file_is_refused_unchanged(locked_dir: Path) -> None:
    target = locked_dir / "rmi.db"
    open_database(str(target)).close()
    target.chmod(0o444)
    before = snapshot(locked_dir)
    assert open_without_write_permission(target) == (
        f"{target}: the database file is read-only; make it writable (chmod u+w {target}) or "
        f"copy it somewhere writable and point --db at the copy"
    )
    assert snapshot(locked_dir) == before


def test_read_only_folder_is_refused_unchanged(locked_dir: Path) -> None:
    target = locked_dir / "rmi.db"
    open_database(str(target)).close()
    locked_dir.chmod(0o555)
    before = snapshot(locked_dir)
    assert open_without_write_permission(target) == (
        f"{target}: the folder {locked_dir} is not writable, and SQLite needs to create "
        f"rmi.db-wal and rmi.db-shm beside the database; make the folder writable or move the "
        f"database"
    )
    assert snapshot(locked_dir) == before
