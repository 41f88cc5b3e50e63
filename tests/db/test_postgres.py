"""PostgreSQL specifics, on a throwaway server (skipped, with the reason, without one).

The queue and process tests already run on both backends through the `db_url` fixture.
"""

from __future__ import annotations

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
