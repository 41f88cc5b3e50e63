"""Alembic from code: head, no drift between models and migrations, `rmi db upgrade`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from db_samples import NEXT_REVISION, eval_result, metrics, train_spec
from sqlalchemy import MetaData, Table, create_engine, update

from rmi_cli.db import (
    VERSION_TABLE,
    Database,
    current_revision,
    enqueue_experiment,
    head_revision,
    open_database,
    store_evaluation,
    store_metrics,
    upgrade,
)
from rmi_cli.db.migrate import migrate_to, migrations_folder, revisions, schema_diff
from rmi_cli.errors import DatabaseError, SchemaOutOfDate


def count(path: Path, table: str) -> int:
    raw = sqlite3.connect(path)
    try:
        return raw.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        raw.close()


def test_revisions_are_found_relative_to_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Path(__file__).resolve().parents[2] / "migrations" == migrations_folder()
    assert revisions()[0] == "0001"
    assert revisions()[-1] == head_revision()


def test_models_and_migrated_schema_do_not_differ(db: Database) -> None:
    assert current_revision(db) == head_revision()
    assert schema_diff(db) == []


def test_upgrade_at_head_does_nothing(db: Database, db_path: Path) -> None:
    report = upgrade(db)
    assert (report.from_rev, report.to_rev, report.backup_path) == (head_revision(),) * 2 + (None,)
    assert not report.changed
    assert sorted(p.name for p in db_path.parent.iterdir() if ".bak" in p.name) == []


def test_upgrade_of_an_empty_database_creates_it(db_path: Path) -> None:
    with open_database(str(db_path), check_schema=False) as db:
        report = upgrade(db)
    assert (report.from_rev, report.to_rev, report.backup_path) == (None, head_revision(), None)
    assert count(db_path, VERSION_TABLE) == 1


def populate_at_head(db_path: Path) -> str:
    """A database at the real head (before the test-only revision), with rows; its revision."""
    head = revisions()[-2]
    with open_database(str(db_path), check_schema=False) as db:
        migrate_to(db, head)
        report = enqueue_experiment(db, "e", [train_spec(seed) for seed in range(3)])
        run_id = report.jobs[0][1].run_id
        store_metrics(db, run_id, metrics(range(1, 11)))
        store_evaluation(db, run_id, eval_result())
    return head


def test_out_of_date_database_is_refused_until_upgraded(db_path: Path, two_revisions: Path) -> None:
    head = populate_at_head(db_path)
    with pytest.raises(SchemaOutOfDate) as caught:
        open_database(str(db_path))
    assert str(caught.value) == (
        f"{db_path}: the database schema is at revision {head}, this version of rmi needs "
        f"{NEXT_REVISION}; run `rmi db upgrade`"
    )
    with open_database(str(db_path), check_schema=False) as db:
        report = upgrade(db)
    assert (report.from_rev, report.to_rev) == (head, NEXT_REVISION)
    assert report.backup_path is not None
    assert report.backup_path.name.startswith(f"rmi.db.bak-{head}-")
    open_database(str(db_path)).close()
    # The upgraded file kept every row, including those below `runs`, which batch mode rebuilt.
    for table, rows in {"runs": 3, "train_metrics": 10, "evaluations": 1, "class_iou": 3}.items():
        assert count(db_path, table) == rows, table
        assert count(report.backup_path, table) == rows, table
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT DISTINCT note FROM runs").fetchall() == [("none",)]
    raw.close()
    backup = sqlite3.connect(report.backup_path)
    assert backup.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(head,)]
    backup.close()


def test_upgrade_refuses_a_newer_schema_without_a_backup(db_path: Path) -> None:
    open_database(str(db_path)).close()
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        version = Table(VERSION_TABLE, MetaData(), autoload_with=conn)
        conn.execute(update(version).values(version_num="9999"))
    engine.dispose()
    with open_database(str(db_path), check_schema=False) as db, pytest.raises(DatabaseError):
        upgrade(db)
    assert [p.name for p in db_path.parent.iterdir() if ".bak" in p.name] == []
