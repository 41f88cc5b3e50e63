"""`rmi db merge`: bring results files (`portable.py`) into this database, all or nothing.

A run is matched by its config hash. One this database lacks is added with everything the file
holds about it. One it has is completed from the file when the file has it done and here it is
queued or failed (a node that could not reach the database ran it); a run done in both must agree
on what both hold (the training summary, the evaluations of the same split and post-processing),
and gets what only the file has (another split's evaluation, say). Anything else is a conflict:
the same run trained twice with different results, a run that is running here, an experiment
whose run name points at another configuration here. A conflict, like any error, refuses the
whole merge: every file is merged in one transaction, so nothing is half-merged. Merging a file
again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rmi_cli.config import canonical_hash
from rmi_cli.db.database import Database, get_or_insert
from rmi_cli.db.export import run_row
from rmi_cli.db.portable import EvaluationRow, ExperimentRow, ResultsFile, RunRow
from rmi_cli.db.results import fingerprint_hash
from rmi_cli.db.schema import (
    ClassIoU,
    Environment,
    Evaluation,
    Experiment,
    ImageEvidence,
    JobStatus,
    Membership,
    MetricPoint,
    Run,
    TrainSummary,
)
from rmi_cli.errors import UserError
from rmi_cli.records import Fingerprint


@dataclass
class MergeReport:
    """What a merge did, by run label ("experiment/name", else the config hash)."""

    added: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # queued/failed here, done in a file
    unchanged: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)


@dataclass
class _Context:
    path: Path
    environments: dict[str, int]  # the file's fingerprint hash -> this database's id
    labels: dict[str, str]  # config hash -> "experiment/name"

    def label(self, config_hash: str) -> str:
        return self.labels.get(config_hash, config_hash)

    def refuse(self, message: str) -> UserError:
        return UserError(f"{self.path}: {message}; nothing was merged")


def merge_results(db: Database, files: Sequence[tuple[Path, ResultsFile]]) -> MergeReport:
    """Merge every file into `db` in one transaction (see the module doc)."""

    def work(session: Session) -> MergeReport:
        report = MergeReport()
        for path, document in files:
            _merge_file(session, path, document, report)
        return report

    return db.transaction(work)


def _merge_file(session: Session, path: Path, document: ResultsFile, report: MergeReport) -> None:
    labels = {
        member.run: f"{experiment.name}/{member.name}"
        for experiment in document.experiments
        for member in experiment.members
    }
    context = _Context(path, {}, labels)
    for key, fields in document.environments.items():
        context.environments[key] = _environment(session, context, key, fields)
    for row in document.runs:
        _merge_run(session, context, row, report)
    for experiment in document.experiments:
        _merge_experiment(session, context, experiment)
        report.experiments.append(experiment.name)


def _environment(session: Session, context: _Context, key: str, fields: dict) -> int:
    try:
        fingerprint = Fingerprint(**fields)
    except TypeError as exc:
        raise context.refuse(f"environment {key}: {exc}") from None
    digest = fingerprint_hash(fingerprint)
    environment, _ = get_or_insert(
        session,
        select(Environment).where(Environment.fingerprint_hash == digest),
        lambda: Environment(fingerprint_hash=digest, **fingerprint.to_dict()),
    )
    return environment.id


def _merge_run(session: Session, context: _Context, row: RunRow, report: MergeReport) -> None:
    label = context.label(row.config_hash)
    if row.kind == "train" and canonical_hash(row.config_json) != row.config_hash:
        raise context.refuse(
            f"run {label}: config hash {row.config_hash} does not match its configuration "
            f"({canonical_hash(row.config_json)}); the file was edited: export it again"
        )
    here = session.scalars(select(Run).where(Run.config_hash == row.config_hash)).first()
    if here is None:
        _add_run(session, context, row)
        report.added.append(label)
    elif row.status != "done":
        report.unchanged.append(label)  # nothing finished to bring
    elif here.status == JobStatus.DONE:
        added = _add_missing_results(session, context, here, row)
        (report.completed if added else report.unchanged).append(label)
    elif here.status == JobStatus.RUNNING:
        raise context.refuse(
            f"run {label} ({row.config_hash}) is done in the file but running here (worker "
            f"{here.worker}); merge the file again once that worker has finished or given it up"
        )
    else:
        _complete(session, context, here, row)
        report.completed.append(label)


def _add_run(session: Session, context: _Context, row: RunRow) -> None:
    depends_on_id = None
    if row.depends_on is not None:
        depends_on_id = session.scalar(select(Run.id).where(Run.config_hash == row.depends_on))
        if depends_on_id is None:
            raise context.refuse(
                f"run {context.label(row.config_hash)} needs run {row.depends_on}, which is "
                f"neither in the file nor in the database; export the file again"
            )
    running = row.status == "running"  # a lease from another database means nothing
    run = Run(
        **row.model_dump(include=_RUN_COLUMNS),
        depends_on_id=depends_on_id,
        environment_id=_env(context, row.environment),
    )
    if running:
        run.status, run.worker, run.started_at = JobStatus.QUEUED, None, None
    session.add(run)
    session.flush()
    _add_results(session, context, run, row)


def _complete(session: Session, context: _Context, here: Run, row: RunRow) -> None:
    """A run queued or failed here, done in the file: take the file's attempt and results."""
    for name in ("status", "attempts", "worker", "error", "started_at", "finished_at"):
        setattr(here, name, getattr(row, name))
    here.checkpoint_path, here.workdir = row.checkpoint_path, row.workdir
    here.environment_id = _env(context, row.environment)
    here.heartbeat_at = here.lease_expires_at = None
    # A failed attempt here may have left reports and a summary: the file's run replaces them.
    for model in (MetricPoint, TrainSummary, Evaluation):
        session.execute(delete(model).where(model.run_id == here.id))
    session.flush()
    _add_results(session, context, here, row)


def _add_missing_results(session: Session, context: _Context, here: Run, row: RunRow) -> bool:
    """A run done in both: refuse what disagrees, add what only the file has."""
    mine = run_row(session, here, {})
    label = f"run {context.label(row.config_hash)} ({row.config_hash})"
    if mine.train is not None and row.train is not None and mine.train != _same_env(mine, row):
        raise context.refuse(
            f"{label} is done in both databases with different training results (final loss "
            f"{mine.train.final_loss:.6g} here, {row.train.final_loss:.6g} in the file): it was "
            f"trained twice; leave this file out, or merge into a database without the run"
        )
    known = {(e.split, e.postprocess): e for e in mine.evaluations}
    new = []
    for evaluation in row.evaluations:
        old = known.get((evaluation.split, evaluation.postprocess))
        if old is None:
            new.append(evaluation)
        elif old.model_dump(exclude={"environment"}) != evaluation.model_dump(
            exclude={"environment"}
        ):
            raise context.refuse(
                f"{label}: evaluation {evaluation.split}/{evaluation.postprocess} differs (mIoU "
                f"{old.miou:.6g} here, {evaluation.miou:.6g} in the file); leave this file out"
            )
    for evaluation in new:
        _add_evaluation(session, context, here.id, evaluation)
    if mine.train is None and row.train is not None:
        _add_train(session, context, here.id, row)
        return True
    return bool(new)


def _same_env(mine: RunRow, row: RunRow) -> object:
    """The file's training summary as this database would hold it (environment keys differ
    only when the file's key was not the fingerprint's hash: compare the rest)."""
    assert row.train is not None and mine.train is not None
    return row.train.model_copy(update={"environment": mine.train.environment})


def _add_results(session: Session, context: _Context, run: Run, row: RunRow) -> None:
    if row.train is not None:
        _add_train(session, context, run.id, row)
    for evaluation in row.evaluations:
        _add_evaluation(session, context, run.id, evaluation)


def _add_train(session: Session, context: _Context, run_id: int, row: RunRow) -> None:
    assert row.train is not None
    values = row.train.model_dump(exclude={"environment"})
    session.add(
        TrainSummary(run_id=run_id, environment_id=_env(context, row.train.environment), **values)
    )
    session.add_all(MetricPoint(run_id=run_id, **point.model_dump()) for point in row.metrics)


def _add_evaluation(
    session: Session, context: _Context, run_id: int, evaluation: EvaluationRow
) -> None:
    stored = Evaluation(
        run_id=run_id,
        environment_id=_env(context, evaluation.environment),
        **evaluation.model_dump(exclude={"environment", "classes", "image_counts"}),
    )
    stored.classes = [ClassIoU(**row.model_dump()) for row in evaluation.classes]
    if evaluation.image_counts is not None:
        stored.evidence = ImageEvidence(**evaluation.image_counts.stored())
    session.add(stored)


def _merge_experiment(session: Session, context: _Context, row: ExperimentRow) -> None:
    experiment, created = get_or_insert(
        session,
        select(Experiment).where(Experiment.name == row.name),
        lambda: Experiment(**row.model_dump(exclude={"members"})),
    )
    if not created and experiment.tables_json is None:
        experiment.tables_json = row.tables_json
    session.flush()
    members = {
        m.name: m
        for m in session.scalars(
            select(Membership).where(Membership.experiment_id == experiment.id)
        )
    }
    for member in row.members:
        run_id = session.scalar(select(Run.id).where(Run.config_hash == member.run))
        if run_id is None:
            raise context.refuse(f"experiment {row.name} names run {member.run}, not in the file")
        old = members.get(member.name)
        if old is None:
            values = member.model_dump(exclude={"run"})
            session.add(Membership(experiment_id=experiment.id, run_id=run_id, **values))
        elif old.run_id != run_id:
            raise context.refuse(
                f"run {row.name}/{member.name} is configuration {member.run} in the file but "
                f"{old.run.config_hash} here (its configuration changed in one of them); queue "
                f"the experiment from the same manifest on both sides, or leave this file out"
            )


def _env(context: _Context, key: str | None) -> int | None:
    if key is None:
        return None
    if key not in context.environments:
        raise context.refuse(f"environment {key} is used but not in the file's environments")
    return context.environments[key]


_RUN_COLUMNS = {
    "kind", "config_hash", "config_json", "status", "priority", "attempts", "max_attempts",
    "worker", "error", "created_at", "started_at", "finished_at", "checkpoint_path", "workdir",
}  # fmt: skip
