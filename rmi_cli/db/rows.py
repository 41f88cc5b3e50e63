"""The read side for reports and `rmi status`: one frozen record per row (`rmi_cli.stored`).

The report layer turns these into DataFrames; fractions stay fractions (IoU 0.734, not 73.4),
times are milliseconds, memory megabytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from rmi_cli.db.database import Database
from rmi_cli.db.schema import (
    Environment,
    Experiment,
    JobStatus,
    Membership,
    MetricPoint,
    Run,
    TrainSummary,
    utcnow,
)
from rmi_cli.errors import DatabaseError
from rmi_cli.stored import MetricsRecord, RunRecord, ThroughputRecord


def experiment_names(db: Database) -> list[str]:
    with db.session() as session:
        return list(session.scalars(select(Experiment.name).order_by(Experiment.name)))


def experiment_tables(db: Database, name: str) -> list[dict[str, Any]]:
    """The tables the experiment's manifest declares (`tables:` entries: kind, split, rows,
    cols, baseline, title), in its order; empty when it declared none."""
    with db.session() as session:
        experiment_id = find_experiment_id(session, db, name)
        stored = session.get(Experiment, experiment_id).tables_json  # type: ignore[union-attr]
        return [dict(table) for table in stored or ()]


def run_rows(db: Database, *, experiment: str | None = None) -> list[RunRecord]:
    """One record per run of the experiment (all experiments, then runs in none, when None)."""
    now = utcnow()
    with db.session() as session:
        stmt = (
            select(Membership, Experiment.name, Run)
            .join(Membership.experiment)
            .join(Membership.run)
            .order_by(Experiment.name, Membership.position, Membership.name)
        )
        if experiment is not None:
            stmt = stmt.where(
                Membership.experiment_id == find_experiment_id(session, db, experiment)
            )
        rows = [
            RunRecord(
                experiment=name,
                name=member.name,
                method=member.method,
                group=member.group_label,
                params=dict(member.params_json or {}),
                **_run_fields(run, now),
                **config_fields(run.depends_on or run),
            )
            for member, name, run in session.execute(stmt.options(selectinload(Run.depends_on)))
        ]
        if experiment is None:
            alone = select(Run).where(~Run.members.any()).order_by(Run.id)
            rows += [
                RunRecord(
                    experiment=None,
                    name=run.config_hash,
                    **_run_fields(run, now),
                    **config_fields(run.depends_on or run),
                )
                for run in session.scalars(alone.options(selectinload(Run.depends_on)))
            ]
        return rows


def metrics_rows(db: Database, run_id: int) -> list[MetricsRecord]:
    """The run's training reports by iteration."""
    with db.session() as session:
        points = session.scalars(
            select(MetricPoint).where(MetricPoint.run_id == run_id).order_by(MetricPoint.iteration)
        )
        return [
            MetricsRecord(
                iteration=point.iteration,
                loss=point.loss,
                lr=point.lr,
                images_per_s=point.images_per_s,
                elapsed_s=point.elapsed_s,
                rmi_fallbacks=point.rmi_fallbacks,
                extra=dict(point.extra_json),
            )
            for point in points
        ]


def throughput_rows(db: Database) -> list[ThroughputRecord]:
    """One record per trained run with a stored training summary, oldest first."""
    with db.session() as session:
        stmt = (
            select(TrainSummary, Run.config_hash, Run.config_json, Environment.device)
            .join(Run, Run.id == TrainSummary.run_id)
            .join(Environment, Environment.id == TrainSummary.environment_id)
            .order_by(TrainSummary.created_at, TrainSummary.run_id)
        )
        return [
            ThroughputRecord(
                run_id=summary.run_id,
                config_hash=config_hash,
                config=config,
                iterations=summary.iterations,
                train_time_s=summary.train_time_s,
                images_per_s=summary.images_per_s,
                peak_train_memory_mb=summary.peak_train_memory_mb,
                device=device,
                resumed_from=summary.resumed_from,
                world_size=summary.world_size,
                batch_per_rank=_batch_per_rank(summary, config),
            )
            for summary, config_hash, config, device in session.execute(stmt)
        ]


def _batch_per_rank(summary: TrainSummary, config: dict[str, Any]) -> int | None:
    """Stored since revision 0003; before it every run trained in one process."""
    if summary.batch_per_rank is not None:
        return summary.batch_per_rank
    batch = (config.get("train") or {}).get("batch_size")
    return batch // summary.world_size if isinstance(batch, int) else None


def find_experiment_id(session: Session, db: Database, name: str) -> int:
    """The experiment's id; an unknown name is a `DatabaseError` listing the known ones."""
    found = session.scalar(select(Experiment.id).where(Experiment.name == name))
    if found is None:
        known = ", ".join(session.scalars(select(Experiment.name).order_by(Experiment.name)))
        raise DatabaseError(
            f"{db.url}: no experiment {name!r} in the database (it has: {known or 'none'}); "
            f"queue it with `rmi ablate`"
        )
    return found


def run_ids(runs: Iterable[Run]) -> set[int]:
    return {run.id for run in runs}


def config_fields(source: Run) -> dict[str, Any]:
    """What tables need from a trained run's configuration to say how its numbers were made
    (for a CRF job, `source` is the run it post-processes). A configuration stored before
    data.void existed ignored its void: it reads "ignore"."""
    config = source.config_json or {}
    model, data = config.get("model") or {}, config.get("data") or {}
    pretrained = model.get("pretrained")
    return {
        "dataset": data.get("name"),
        "pretrained": pretrained,
        "from_scratch": pretrained is None,
        "void": data.get("void", "ignore"),
    }


def _run_fields(run: Run, now: datetime) -> dict[str, Any]:
    heartbeat = run.heartbeat_at
    return {
        "run_id": run.id,
        "config_hash": run.config_hash,
        "kind": run.kind,
        "status": run.status,
        "priority": run.priority,
        "attempts": run.attempts,
        "max_attempts": run.max_attempts,
        "worker": run.worker,
        "heartbeat_at": heartbeat,
        "heartbeat_age_s": (now - heartbeat).total_seconds() if heartbeat else None,
        "stale": bool(
            run.status == JobStatus.RUNNING
            and run.lease_expires_at is not None
            and run.lease_expires_at < now
        ),
        "error": run.error,
        "depends_on": run.depends_on.config_hash if run.depends_on else None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }
