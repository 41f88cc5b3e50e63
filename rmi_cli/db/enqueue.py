"""Putting jobs on the queue: idempotent by configuration hash, with experiment membership.

A job is identified by the canonical hash of what it computes, across all experiments: queueing
the same configuration twice (or from two experiments) yields one run. A `done` run is never
queued again; a `failed` one only when asked (`requeue_failed`), with the operational settings
it is queued with now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from rmi_cli.db.database import Database, get_or_insert
from rmi_cli.db.schema import Experiment, JobKind, JobStatus, Membership, Run

DEFAULT_MAX_ATTEMPTS = 3
Outcome = Literal["new", "requeued", "exists"]


@dataclass(frozen=True)
class JobSpec:
    """One job to queue, as the manifest planned it.

    For a train run: `config` is the resolved `RunConfig` JSON and `config_hash` its canonical
    hash. For a CRF step: `config` is `{"kind": "crf", "on": <train hash>, "crf": ..., "split":
    ...}` and `depends_on` the train run's hash, so the CRF job waits until that run is done.
    """

    kind: str
    config: dict[str, Any]
    config_hash: str
    name: str = ""  # the run's name within its experiment (required by enqueue_experiment)
    method: str = ""  # table label, e.g. "RMI" or "CE + CRF"
    group: str = ""  # table group, e.g. "DeepLabv3"
    params: dict[str, Any] = field(default_factory=dict)  # grid coordinates, dotted keys
    depends_on: str | None = None  # config hash of the job this one needs
    priority: int = 0  # higher runs first
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    workdir: str | None = None


@dataclass(frozen=True)
class ExperimentInfo:
    """What the manifest says about an experiment besides its jobs."""

    description: str = ""
    manifest_path: str | None = None
    tables: Sequence[Mapping[str, Any]] = ()  # its `tables:` entries, plain JSON values


@dataclass(frozen=True)
class Enqueued:
    run_id: int
    config_hash: str
    outcome: Outcome  # "exists": already on the queue, running, done, or failed
    status: str  # the job's status afterwards

    @property
    def new(self) -> bool:
        return self.outcome == "new"


@dataclass(frozen=True)
class EnqueueReport:
    """What `enqueue_experiment` did, one entry per job in the order given."""

    experiment: str
    jobs: tuple[tuple[str, Enqueued], ...]  # (run name, what happened)
    repointed: tuple[str, ...] = ()  # names whose configuration changed since the last queueing

    def names(self, outcome: Outcome, status: str | None = None) -> list[str]:
        """Run names with this outcome (and status), e.g. `names("exists", "done")`."""
        return [
            name
            for name, job in self.jobs
            if job.outcome == outcome and (status is None or job.status == status)
        ]


def enqueue(db: Database, spec: JobSpec, *, requeue_failed: bool = False) -> Enqueued:
    """Queue one job unless a job with its configuration hash exists (see the module doc)."""
    return db.transaction(lambda session: _enqueue(session, spec, requeue_failed=requeue_failed))


def enqueue_experiment(
    db: Database,
    name: str,
    jobs: Sequence[JobSpec],
    *,
    about: ExperimentInfo | None = None,
    requeue_failed: bool = False,
) -> EnqueueReport:
    """Record the experiment and queue its jobs (train runs before the CRF steps that need
    them), in one transaction. Runs are matched to the experiment by name; a name whose
    configuration changed is pointed at the new run (the old run stays in the database).
    `about` (from its manifest) replaces what is stored about the experiment; without it (a CRF
    step queued on its own, say) that stays as it was."""
    names = [job.name for job in jobs]
    if "" in names or len(set(names)) != len(names):
        raise ValueError(f"experiment {name!r}: every job needs a unique name; got {names}")

    def work(session: Session) -> EnqueueReport:
        experiment = _experiment(session, name, about)
        members = {
            m.name: m
            for m in session.scalars(
                select(Membership).where(Membership.experiment_id == experiment.id)
            )
        }
        done, repointed = [], []
        for position, spec in enumerate(jobs):
            queued = _enqueue(session, spec, requeue_failed=requeue_failed)
            if _set_member(session, experiment, members.get(spec.name), spec, queued, position):
                repointed.append(spec.name)
            done.append((spec.name, queued))
        return EnqueueReport(name, tuple(done), tuple(repointed))

    return db.transaction(work)


def _set_member(
    session: Session,
    experiment: Experiment,
    member: Membership | None,
    spec: JobSpec,
    queued: Enqueued,
    position: int,
) -> bool:
    """Create or update the run's membership; True when it pointed at another run before."""
    if member is None:
        member = Membership(experiment_id=experiment.id, name=spec.name)
        session.add(member)
    repointed = member.run_id is not None and member.run_id != queued.run_id
    member.run_id = queued.run_id
    member.method, member.group_label = spec.method, spec.group
    member.params_json, member.position = dict(spec.params), position
    return repointed


def _experiment(session: Session, name: str, about: ExperimentInfo | None) -> Experiment:
    experiment, _ = get_or_insert(
        session,
        select(Experiment).where(Experiment.name == name),
        lambda: Experiment(name=name),
    )
    if about is not None:
        experiment.description = about.description
        experiment.manifest_path = about.manifest_path
        experiment.tables_json = [dict(table) for table in about.tables] or None
    return experiment


def _enqueue(session: Session, spec: JobSpec, *, requeue_failed: bool) -> Enqueued:
    if spec.kind not in set(JobKind):
        raise ValueError(f"job kind must be one of {[k.value for k in JobKind]}; got {spec.kind!r}")
    run, created = get_or_insert(
        session,
        select(Run).where(Run.config_hash == spec.config_hash),
        lambda: _new_run(session, spec),
    )
    if created:
        return Enqueued(run.id, spec.config_hash, "new", JobStatus.QUEUED.value)
    if run.status == JobStatus.FAILED and requeue_failed:
        run.status, run.attempts, run.error = JobStatus.QUEUED, 0, None
        run.worker = run.heartbeat_at = run.lease_expires_at = run.finished_at = None
        # Same hash, so only operational settings can differ (train.device, data.workers):
        # the ones given now may be the fix (a run that failed on cuda, queued again for cpu).
        run.config_json = dict(spec.config)
        session.flush()
        return Enqueued(run.id, spec.config_hash, "requeued", JobStatus.QUEUED.value)
    return Enqueued(run.id, spec.config_hash, "exists", str(run.status))


def _new_run(session: Session, spec: JobSpec) -> Run:
    depends_on_id = None
    if spec.depends_on is not None:
        depends_on_id = session.scalar(select(Run.id).where(Run.config_hash == spec.depends_on))
        if depends_on_id is None:
            raise ValueError(
                f"job {spec.name or spec.config_hash} depends on {spec.depends_on}, which is not "
                f"queued; queue the run it depends on first"
            )
    return Run(
        kind=spec.kind,
        config_hash=spec.config_hash,
        config_json=dict(spec.config),
        depends_on_id=depends_on_id,
        status=JobStatus.QUEUED,
        priority=spec.priority,
        max_attempts=spec.max_attempts,
        workdir=spec.workdir,
    )
