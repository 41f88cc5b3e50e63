"""The job queue: claims with leases, heartbeats, stale reclaim, attempts, release.

A worker `claim`s a job and must `heartbeat` it before its lease runs out (every lease_s / 3,
say); a running job whose lease has expired is stale, and the next claim takes it over (the new
worker resumes from the last checkpoint). Every claim counts an attempt except those given back
with `release` (SIGINT/SIGTERM); a job out of attempts fails with its error stored. A job whose
dependency failed fails too. On SQLite the claim runs under `BEGIN IMMEDIATE` (one claimer at a
time); on PostgreSQL, `SELECT ... FOR UPDATE SKIP LOCKED` lets claimers pass each other.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Select, and_, case, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from rmi_cli.db.database import Database
from rmi_cli.db.enqueue import (
    DEFAULT_MAX_ATTEMPTS,
    Enqueued,
    EnqueueReport,
    ExperimentInfo,
    JobSpec,
    enqueue,
    enqueue_experiment,
)
from rmi_cli.db.schema import Experiment, JobKind, JobStatus, Membership, Run, utcnow

DEFAULT_LEASE_S = 300.0
ALL_KINDS: tuple[str, ...] = tuple(JobKind)
# a select statement, whatever it selects (a string: the variadic form is for mypy only)
S = TypeVar("S", bound="Select[*tuple[Any, ...]]")

__all__ = [
    "ALL_KINDS",
    "DEFAULT_LEASE_S",
    "DEFAULT_MAX_ATTEMPTS",
    "EnqueueReport",
    "Enqueued",
    "ExperimentInfo",
    "Job",
    "JobSpec",
    "claim",
    "complete",
    "enqueue",
    "enqueue_experiment",
    "expire_lease",
    "fail",
    "get_job",
    "heartbeat",
    "release",
    "running_jobs",
    "stale_jobs",
    "status_counts",
]


@dataclass(frozen=True)
class Job:
    """A snapshot of one job, as a worker needs it."""

    id: int
    kind: str
    config_hash: str
    config: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    priority: int
    worker: str | None
    heartbeat_at: datetime | None
    lease_expires_at: datetime | None
    error: str | None
    workdir: str | None
    checkpoint_path: str | None
    depends_on_id: int | None
    depends_on_hash: str | None
    names: tuple[str, ...]  # "experiment/run" for every experiment that includes it
    reclaimed: bool = False  # taken over from a worker whose lease expired: resume it
    started_at: datetime | None = None  # when the current (or last) holder claimed it

    @property
    def label(self) -> str:
        return self.names[0] if self.names else self.config_hash


def claim(
    db: Database,
    *,
    worker: str,
    kinds: Sequence[str] = ALL_KINDS,
    lease_s: float = DEFAULT_LEASE_S,
    experiment: str | None = None,
    run_ids: Collection[int] | None = None,
) -> Job | None:
    """Take the next job: the highest priority, then oldest, queued job whose dependency is done,
    or a stale running job; None when there is nothing to do. Optionally only jobs of one
    experiment or with given ids."""
    lease = timedelta(seconds=lease_s)
    return db.transaction(
        lambda session: _claim(session, worker, tuple(kinds), lease, experiment, run_ids)
    )


def heartbeat(db: Database, job_id: int, worker: str, *, lease_s: float = DEFAULT_LEASE_S) -> bool:
    """Extend the lease; False when `worker` no longer holds the job (stop working on it)."""
    now = utcnow()
    values = {"heartbeat_at": now, "lease_expires_at": now + timedelta(seconds=lease_s)}
    return _update_held(db, job_id, worker, values)


def complete(db: Database, job_id: int, worker: str) -> bool:
    """Mark the job done; False when `worker` no longer holds it."""
    values = {"status": JobStatus.DONE, "finished_at": utcnow(), "lease_expires_at": None}
    return _update_held(db, job_id, worker, {**values, "error": None})


def fail(db: Database, job_id: int, worker: str, error: str, *, retry: bool = True) -> str | None:
    """Record a failed attempt: back to `queued` while attempts remain and `retry`, else
    `failed`. Returns the new status, None when `worker` no longer holds the job."""

    def work(session: Session) -> str | None:
        run = session.scalars(_held(job_id, worker).with_for_update()).first()
        if run is None:
            return None
        again = retry and run.attempts < run.max_attempts
        run.status = JobStatus.QUEUED if again else JobStatus.FAILED
        run.error = error
        run.lease_expires_at = None
        if again:
            run.worker = None
        else:
            run.finished_at = utcnow()
        return str(run.status)

    return db.transaction(work)


def release(db: Database, job_id: int, worker: str) -> bool:
    """Give the job back (interrupted, not failed): queued again, the attempt not counted."""
    values = {
        "status": JobStatus.QUEUED,
        "attempts": case((Run.attempts > 0, Run.attempts - 1), else_=0),
        "worker": None,
        "heartbeat_at": None,
        "lease_expires_at": None,
        "started_at": None,
    }
    return _update_held(db, job_id, worker, values)


def expire_lease(db: Database, job_id: int, worker: str) -> bool:
    """End `worker`'s lease on the job now, so that the next claim takes the job over (its
    process is known to be gone); False when `worker` no longer holds it."""
    return _update_held(db, job_id, worker, {"lease_expires_at": utcnow()})


def running_jobs(
    db: Database, *, experiment: str | None = None, run_ids: Collection[int] | None = None
) -> list[Job]:
    """The jobs a worker holds (status running), of one experiment or with given ids."""
    with db.session() as session:
        stmt = select(Run).where(Run.status == JobStatus.RUNNING).order_by(Run.id)
        if run_ids is not None:
            stmt = stmt.where(Run.id.in_(list(run_ids)))
        stmt = _in_experiment(stmt, experiment)
        return [_snapshot(session, run) for run in session.scalars(stmt)]


def get_job(db: Database, job_id: int) -> Job | None:
    with db.session() as session:
        run = session.get(Run, job_id)
        return None if run is None else _snapshot(session, run)


def stale_jobs(db: Database) -> list[Job]:
    """Running jobs whose lease has expired (their worker is gone or hung)."""
    with db.session() as session:
        stmt = select(Run).where(_is_stale(utcnow())).order_by(Run.id)
        return [_snapshot(session, run) for run in session.scalars(stmt)]


def status_counts(db: Database, experiment: str | None = None) -> dict[str, int]:
    """Jobs per status, plus "stale" (running jobs with an expired lease, counted in running)."""
    now = utcnow()
    with db.session() as session:
        stale = func.sum(case((_is_stale(now), 1), else_=0))
        stmt = select(Run.status, func.count(), stale).group_by(Run.status)
        rows = session.execute(_in_experiment(stmt, experiment)).all()
    counts = {status.value: 0 for status in JobStatus} | {"stale": 0}
    for status, count, stale_count in rows:
        counts[status] = count
        counts["stale"] += int(stale_count or 0)
    return counts


def _claim(
    session: Session,
    worker: str,
    kinds: tuple[str, ...],
    lease: timedelta,
    experiment: str | None,
    run_ids: Collection[int] | None,
) -> Job | None:
    now = utcnow()
    _fail_blocked(session, now)
    stmt = _claimable(now, kinds, experiment, run_ids)
    while (run := session.scalars(stmt).first()) is not None:
        reclaimed = run.status == JobStatus.RUNNING
        if reclaimed:
            last = f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if run.heartbeat_at else "never"
            run.error = f"worker {run.worker} lost its lease (last heartbeat: {last})"
        if run.attempts >= run.max_attempts:
            run.status, run.finished_at = JobStatus.FAILED, now
            run.error = f"{run.error or 'no attempts left'}; failed after {run.attempts} attempts"
            session.flush()
            continue
        run.status, run.worker, run.attempts = JobStatus.RUNNING, worker, run.attempts + 1
        run.started_at = run.heartbeat_at = now
        run.lease_expires_at, run.finished_at = now + lease, None
        session.flush()
        return _snapshot(session, run, reclaimed=reclaimed)
    return None


def _claimable(
    now: datetime,
    kinds: tuple[str, ...],
    experiment: str | None,
    run_ids: Collection[int] | None,
) -> Select[Run]:
    dependency = aliased(Run)
    ready = or_(
        Run.depends_on_id.is_(None),
        Run.depends_on_id.in_(select(dependency.id).where(dependency.status == JobStatus.DONE)),
    )
    stmt = select(Run).where(
        Run.kind.in_(kinds), or_(and_(Run.status == JobStatus.QUEUED, ready), _is_stale(now))
    )
    if run_ids is not None:
        stmt = stmt.where(Run.id.in_(list(run_ids)))
    stmt = _in_experiment(stmt, experiment).order_by(Run.priority.desc(), Run.id)
    # SKIP LOCKED: on PostgreSQL concurrent claimers skip each other's rows instead of waiting;
    # SQLite ignores the clause (BEGIN IMMEDIATE already serialises claimers).
    return stmt.limit(1).with_for_update(skip_locked=True)


def _fail_blocked(session: Session, now: datetime) -> None:
    """Fail queued jobs whose dependency failed (repeatedly, for chains of dependencies)."""
    dependency = aliased(Run)
    stmt = (
        select(Run, dependency)
        .join(dependency, Run.depends_on_id == dependency.id)
        .where(Run.status == JobStatus.QUEUED, dependency.status == JobStatus.FAILED)
        .with_for_update(skip_locked=True, of=Run)
    )
    while blocked := session.execute(stmt).all():
        for run, failed in blocked:
            reason = (failed.error or "no error recorded").splitlines()[0]
            run.status, run.finished_at = JobStatus.FAILED, now
            run.error = f"its {failed.kind} run {failed.config_hash} failed: {reason}"
        session.flush()


def _is_stale(now: datetime) -> Any:
    return and_(Run.status == JobStatus.RUNNING, Run.lease_expires_at < now)


def _in_experiment(stmt: S, experiment: str | None) -> S:
    if experiment is None:
        return stmt
    members = select(Membership.run_id).join(Experiment).where(Experiment.name == experiment)
    return stmt.where(Run.id.in_(members))


def _held(job_id: int, worker: str) -> Select[Run]:
    return select(Run).where(
        Run.id == job_id, Run.worker == worker, Run.status == JobStatus.RUNNING
    )


def _update_held(db: Database, job_id: int, worker: str, values: dict[str, Any]) -> bool:
    stmt = (
        update(Run)
        .where(Run.id == job_id, Run.worker == worker, Run.status == JobStatus.RUNNING)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    result = db.transaction(lambda session: cast(CursorResult[Any], session.execute(stmt)))
    return result.rowcount == 1


def _snapshot(session: Session, run: Run, *, reclaimed: bool = False) -> Job:
    names = session.execute(
        select(Experiment.name, Membership.name)
        .join(Membership.experiment)
        .where(Membership.run_id == run.id)
        .order_by(Experiment.name, Membership.name)
    ).all()
    return Job(
        id=run.id,
        kind=run.kind,
        config_hash=run.config_hash,
        config=run.config_json,
        status=str(run.status),
        attempts=run.attempts,
        max_attempts=run.max_attempts,
        priority=run.priority,
        worker=run.worker,
        heartbeat_at=run.heartbeat_at,
        lease_expires_at=run.lease_expires_at,
        error=run.error,
        workdir=run.workdir,
        checkpoint_path=run.checkpoint_path,
        depends_on_id=run.depends_on_id,
        depends_on_hash=run.depends_on.config_hash if run.depends_on else None,
        names=tuple(f"{experiment}/{name}" for experiment, name in names),
        reclaimed=reclaimed,
        started_at=run.started_at,
    )
