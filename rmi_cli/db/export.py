"""`rmi db export`: one experiment, with every run it names (and the runs those depend on), as a
portable results file (`portable.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rmi_cli.db.database import Database
from rmi_cli.db.migrate import current_revision
from rmi_cli.db.portable import (
    FORMAT,
    VERSION,
    ClassRow,
    CountsRow,
    EvaluationRow,
    ExperimentRow,
    MemberRow,
    MetricRow,
    ResultsFile,
    Row,
    RunRow,
    TrainRow,
)
from rmi_cli.db.schema import (
    Environment,
    Evaluation,
    Experiment,
    MetricPoint,
    Run,
    TrainSummary,
)
from rmi_cli.errors import DatabaseError
from rmi_cli.records import Fingerprint

_FINGERPRINT_FIELDS = tuple(Fingerprint.__dataclass_fields__)
_CHILDREN = ("metrics", "evaluations")


def export_experiment(db: Database, name: str) -> ResultsFile:
    """The experiment `name` as a results file (a `DatabaseError` when there is none)."""
    with db.session() as session:
        experiment = session.scalars(select(Experiment).where(Experiment.name == name)).first()
        if experiment is None:
            known = ", ".join(session.scalars(select(Experiment.name).order_by(Experiment.name)))
            raise DatabaseError(
                f"{db.url}: no experiment {name!r} to export (it has: {known or 'none'})"
            )
        runs = _with_dependencies([member.run for member in experiment.members])
        environments: dict[str, dict[str, Any]] = {}
        return ResultsFile(
            format=FORMAT,
            version=VERSION,
            exported_at=datetime.now(UTC),
            source=db.url,
            schema_revision=current_revision(db),
            experiments=[_experiment(experiment)],
            runs=[run_row(session, run, environments) for run in runs],
            environments=environments,
        )


def run_row(session: Session, run: Run, environments: dict[str, dict[str, Any]]) -> RunRow:
    """Everything stored about `run`; the environments it refers to are added to
    `environments` (fingerprint hash -> fields)."""
    summary = session.get(TrainSummary, run.id)
    metrics = session.scalars(
        select(MetricPoint).where(MetricPoint.run_id == run.id).order_by(MetricPoint.iteration)
    )
    evaluations = session.scalars(
        select(Evaluation)
        .where(Evaluation.run_id == run.id)
        .order_by(Evaluation.split, Evaluation.postprocess)
    )
    return RunRow(
        **_columns(run, RunRow, skip={"depends_on", "environment", "train", *_CHILDREN}),
        depends_on=run.depends_on.config_hash if run.depends_on else None,
        environment=_environment(session, run.environment_id, environments),
        train=None if summary is None else _train(session, summary, environments),
        metrics=[MetricRow(**_columns(point, MetricRow)) for point in metrics],
        evaluations=[_evaluation(session, e, environments) for e in evaluations],
    )


def _with_dependencies(members: list[Run]) -> list[Run]:
    """The runs and, before each, the runs it depends on (each once)."""
    ordered: dict[int, Run] = {}

    def visit(run: Run) -> None:
        if run.id in ordered:
            return
        if run.depends_on is not None:
            visit(run.depends_on)
        ordered[run.id] = run

    for run in sorted(members, key=lambda r: r.id):
        visit(run)
    return list(ordered.values())


def _experiment(experiment: Experiment) -> ExperimentRow:
    members = [
        MemberRow(**_columns(member, MemberRow, skip={"run"}), run=member.run.config_hash)
        for member in experiment.members
    ]
    return ExperimentRow(**_columns(experiment, ExperimentRow, skip={"members"}), members=members)


def _train(
    session: Session, summary: TrainSummary, environments: dict[str, dict[str, Any]]
) -> TrainRow:
    environment = _environment(session, summary.environment_id, environments)
    assert environment is not None  # the column is NOT NULL
    return TrainRow(**_columns(summary, TrainRow, skip={"environment"}), environment=environment)


def _evaluation(
    session: Session, evaluation: Evaluation, environments: dict[str, dict[str, Any]]
) -> EvaluationRow:
    environment = _environment(session, evaluation.environment_id, environments)
    assert environment is not None
    classes = [ClassRow(**_columns(row, ClassRow)) for row in evaluation.classes]
    evidence = evaluation.evidence
    counts = None
    if evidence is not None:
        counts = CountsRow.from_stored(_columns(evidence, CountsRow))
    return EvaluationRow(
        **_columns(evaluation, EvaluationRow, skip={"environment", "classes", "image_counts"}),
        environment=environment,
        classes=classes,
        image_counts=counts,
    )


def _environment(
    session: Session, environment_id: int | None, environments: dict[str, dict[str, Any]]
) -> str | None:
    if environment_id is None:
        return None
    environment = session.get(Environment, environment_id)
    assert environment is not None
    fields = {name: getattr(environment, name) for name in _FINGERPRINT_FIELDS}
    environments[environment.fingerprint_hash] = fields
    return environment.fingerprint_hash


def _columns(row: Any, model: type[Row], skip: set[str] | frozenset[str] = frozenset()) -> dict:
    """The ORM row's values for the model's fields (they share their names)."""
    return {name: getattr(row, name) for name in model.model_fields if name not in skip}
