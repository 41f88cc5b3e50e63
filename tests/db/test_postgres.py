"""PostgreSQL specifics, on a throwaway server (skipped, with the reason, without one).

The queue and process tests already run on both backends through the `db_url` fixture.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
from db_samples import eval_result, image_counts, train_spec
from sqlalchemy import MetaData, Table, update

from rmi_cli.db import (
    VERSION_TABLE,
    current_revision,
    enqueue_experiment,
    evaluation_rows,
    head_revision,
    open_database,
    store_evaluation,
    upgrade,
)
from rmi_cli.db.connect import resolve_target
from rmi_cli.db.database import where
from rmi_cli.db.migrate import schema_diff
from rmi_cli.errors import DatabaseError


def test_created_at_head_without_drift(pg_database: str) -> None:
    with open_database(pg_database) as db:
        assert not db.is_sqlite
        assert current_revision(db) == head_revision()
        assert schema_diff(db) == []
        assert not upgrade(db).changed


def test_results_round_trip(pg_database: str) -> None:
    with open_database(pg_database) as db:
        report = enqueue_experiment(db, "e", [train_spec(1)])
        store_evaluation(db, report.jobs[0][1].run_id, eval_result())
    with open_database(pg_database, create=False) as db:
        (row,) = [asdict(record) for record in evaluation_rows(db, experiment="e")]
    assert row["class_iou"] == {"road": 0.5, "sky": None, "car": 0.75}
    assert row["protocol"]["precision"] == "fp32"
    # the per-image counts' blob is BYTEA here, BLOB on SQLite: the same bytes either way
    np.testing.assert_array_equal(row["image_counts"]["counts"], image_counts().counts)
    assert row["boundary_miou"] == 0.375


def test_newer_schema_refused(pg_database: str) -> None:
    with open_database(pg_database) as db, db.engine.begin() as conn:
        version = Table(VERSION_TABLE, MetaData(), autoload_with=conn)
        conn.execute(update(version).values(version_num="9999"))
    with pytest.raises(DatabaseError, match="a newer rmi wrote it; upgrade rmi"):
        open_database(pg_database)


def test_unreachable_server_is_one_line() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://rmi:secret@127.0.0.1:1/rmi"
    with pytest.raises(DatabaseError) as caught:
        open_database(url)
    message = str(caught.value)
    assert message.startswith(f"{where(resolve_target(url)[0])}: cannot open the database (")
    assert "secret" not in message and "\n" not in message


def _statement_timeout(url: str, *, read_only: bool) -> str:
    with open_database(url, create=False, read_only=read_only) as db, db.engine.connect() as conn:
        return str(conn.exec_driver_sql("SHOW statement_timeout").scalar_one())


def test_readers_get_a_statement_timeout_writers_do_not_and_the_url_decides(
    pg_database: str,
) -> None:
    open_database(pg_database).close()
    assert _statement_timeout(pg_database, read_only=True) == "1min"
    assert _statement_timeout(pg_database, read_only=False) == "0"
    own = f"{pg_database}?options=-c%20statement_timeout%3D5s"
    assert _statement_timeout(own, read_only=True) == "5s"
    with open_database(f"{pg_database}?connect_timeout=3", create=False) as db:
        assert db.engine.url.query["connect_timeout"] == "3"


def test_a_reader_blocked_past_its_statement_timeout_is_one_line(pg_database: str) -> None:
    """A migration (or anything) holding a lock on `runs`: `rmi status` waits its statement
    timeout (here 1 s, from the URL), then says so in one line instead of hanging."""
    import psycopg

    open_database(pg_database).close()
    plain = pg_database.replace("postgresql+psycopg://", "postgresql://")
    reader_url = f"{pg_database}?options=-c%20statement_timeout%3D1s"
    with psycopg.connect(plain) as locker:
        locker.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        done = subprocess.run(
            [sys.executable, "-m", "rmi_cli", "status", "--db", reader_url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith(f"error: {where(resolve_target(reader_url)[0])}: a query took longer")
    assert "statement timeout" in line and "statement_timeout%3D300s" in line
