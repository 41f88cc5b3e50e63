"""Migrations keep data: a database at every revision, with rows in it, upgraded to head.

When a revision changes what rows hold, add a seeder for it to SEEDERS (rows written with that
revision's columns); revisions without one reuse the latest earlier seeder, which is how a new
NOT NULL column without a default gets caught.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from db_samples import NEXT_REVISION
from sqlalchemy import Connection, MetaData, Table, insert, select

from rmi_cli.db import VERSION_TABLE, head_revision, open_database, upgrade
from rmi_cli.db.evidence import ENCODING
from rmi_cli.db.migrate import migrate_to, revisions

Tables = dict[str, Table]
T0 = datetime(2026, 1, 2, 3, 4, 5)


def row(**values: Any) -> dict[str, Any]:
    return values


def seed_0001(conn: Connection, t: Tables) -> None:
    rows: dict[str, list[dict[str, Any]]] = {
        "environments": [
            row(
                id=1,
                fingerprint_hash="f" * 32,
                hostname="box",
                platform="Linux",
                python="3.11",
                torch="2.5",
                torchvision="0.20",
                device="cpu",
                cuda=None,
                driver=None,
                cudnn=None,
                cpu="x86",
                num_threads=2,
                git_commit="abc",
                rmi_version="0.1.0",
                created_at=T0,
            )
        ],
        "experiments": [
            row(id=1, name="e", description="d", manifest_path="m.yaml", created_at=T0)
        ],
        "runs": [
            row(
                id=1,
                kind="train",
                config_hash="h1",
                config_json={"seed": 1},
                depends_on_id=None,
                status="done",
                priority=0,
                attempts=1,
                max_attempts=3,
                worker="w",
                heartbeat_at=T0,
                lease_expires_at=None,
                error=None,
                created_at=T0,
                started_at=T0,
                finished_at=T0,
                checkpoint_path="c.pt",
                workdir="wd",
                environment_id=1,
            ),
            row(
                id=2,
                kind="crf",
                config_hash="h2",
                config_json={"on": "h1"},
                depends_on_id=1,
                status="queued",
                priority=1,
                attempts=0,
                max_attempts=3,
                worker=None,
                heartbeat_at=None,
                lease_expires_at=None,
                error=None,
                created_at=T0,
                started_at=None,
                finished_at=None,
                checkpoint_path=None,
                workdir=None,
                environment_id=None,
            ),
        ],
        "experiment_runs": [
            row(
                id=1,
                experiment_id=1,
                run_id=1,
                name="a",
                method="RMI",
                group_label="DeepLabv3",
                params_json={"loss.radius": 3},
                position=0,
            )
        ],
        "train_metrics": [
            row(
                run_id=1,
                iteration=i,
                loss=1.0 / i,
                lr=0.01,
                images_per_s=3.0,
                elapsed_s=0.1 * i,
                rmi_fallbacks=0,
                extra_json={},
                recorded_at=T0,
            )
            for i in (1, 2)
        ],
        "train_results": [
            row(
                run_id=1,
                checkpoint_path="c.pt",
                iterations=2,
                final_loss=0.5,
                train_time_s=1.0,
                images_per_s=3.0,
                peak_train_memory_mb=None,
                rmi_fallbacks=0,
                resumed_from=None,
                environment_id=1,
                created_at=T0,
            )
        ],
        "evaluations": [
            row(
                id=1,
                run_id=1,
                split="val",
                postprocess="none",
                miou=0.5,
                pixel_accuracy=0.9,
                mean_accuracy=0.6,
                num_images=4,
                excluded_classes_json=["sky"],
                confusion_json=[[1, 0], [0, 1]],
                inference_median_ms=1.5,
                inference_p90_ms=2.0,
                inference_mean_ms=1.6,
                timing_protocol_json={"batch_size": 1},
                crf_median_ms=None,
                crf_p90_ms=None,
                crf_workers=None,
                crf_params_json=None,
                total_median_ms=1.5,
                peak_eval_memory_mb=None,
                probs_dir=None,
                environment_id=1,
                created_at=T0,
            )
        ],
        "class_iou": [
            row(evaluation_id=1, class_index=0, class_name="road", iou=0.5),
            row(evaluation_id=1, class_index=1, class_name="sky", iou=None),
        ],
    }
    for table, values in rows.items():
        conn.execute(insert(t[table]), values)


def seed_0002(conn: Connection, t: Tables) -> None:
    """0001's rows, the experiment with the tables its manifest declared."""
    seed_0001(conn, t)
    tables = [{"kind": "ablation", "rows": "loss.pool", "cols": "loss.pool_size", "split": "val"}]
    conn.execute(t["experiments"].update().values(tables_json=tables))


def seed_0004(conn: Connection, t: Tables) -> None:
    """0002's rows (0003 seeds nothing new), the evaluation with a boundary IoU and its counts."""
    seed_0002(conn, t)
    conn.execute(t["evaluations"].update().values(boundary_miou=0.25))
    conn.execute(t["class_iou"].update().where(t["class_iou"].c.class_index == 0).values(
        boundary_iou=0.25))  # fmt: skip
    counts = np.arange(2 * 4 * 2, dtype="<i8").reshape(2, 4, 2)
    conn.execute(
        insert(t["image_counts"]),
        [row(evaluation_id=1, num_images=2, num_classes=2, names_json=["a", "b"],
             encoding=ENCODING, counts=zlib.compress(counts.tobytes()), boundary_fraction=0.02)],
    )  # fmt: skip


SEEDERS: dict[str, Callable[[Connection, Tables], None]] = {
    "0001": seed_0001,
    "0002": seed_0002,
    "0004": seed_0004,
}


def seeder_for(revision: str) -> Callable[[Connection, Tables], None]:
    known = revisions()
    usable = [r for r in known[: known.index(revision) + 1] if r in SEEDERS]
    assert usable, f"no seeder at or before revision {revision}: add one to SEEDERS"
    return SEEDERS[usable[-1]]


def dump(conn: Connection) -> dict[str, dict[tuple, dict[str, Any]]]:
    meta = MetaData()
    meta.reflect(conn)
    tables = {}
    for name, table in meta.tables.items():
        if name == VERSION_TABLE:
            continue
        key = [column.name for column in table.primary_key.columns]
        rows = [row._asdict() for row in conn.execute(select(table))]
        tables[name] = {tuple(row[k] for k in key): row for row in rows}
    return tables


def check_rows_survive_upgrade(path: Path, revision: str) -> None:
    with open_database(str(path), check_schema=False) as db:
        migrate_to(db, revision)
        with db.write_engine.begin() as conn:
            meta = MetaData()
            meta.reflect(conn)
            seeder_for(revision)(conn, dict(meta.tables))
            before = dump(conn)
        report = upgrade(db, backup=False)
        assert report.to_rev == head_revision()
        with db.engine.connect() as conn:
            after = dump(conn)
    for table, rows in before.items():
        assert rows, f"the seeder for {revision} left {table} empty"
        for key, row in rows.items():
            assert key in after[table], f"{table} row {key} lost upgrading from {revision}"
            kept = {c: v for c, v in after[table][key].items() if c in row}
            assert kept == {c: v for c, v in row.items() if c in kept}, (table, key)
    open_database(str(path), create=False).close()  # and it opens at head


@pytest.mark.parametrize("revision", revisions())
def test_rows_survive_upgrading_from(revision: str, tmp_path: Path) -> None:
    check_rows_survive_upgrade(tmp_path / f"at-{revision}.db", revision)


def test_the_harness_catches_a_rebuilt_table(tmp_path: Path, two_revisions: Path) -> None:
    """With a revision after the head that rebuilds `runs`, every earlier revision's rows must
    survive the rebuild."""
    assert revisions()[-1] == NEXT_REVISION
    for revision in revisions()[:-1]:
        check_rows_survive_upgrade(tmp_path / f"at-{revision}.db", revision)
