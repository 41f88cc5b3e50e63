"""The read side for figures and the HTML report: an experiment's description, its runs'
configurations, and its training curves in one query (records of `rmi_cli.stored`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rmi_cli.db.database import Database
from rmi_cli.db.rows import find_experiment_id
from rmi_cli.db.schema import Experiment, JobKind, Membership, MetricPoint, Run
from rmi_cli.stored import ExperimentRecord, TrainingPoint


def experiment_about(db: Database, name: str) -> ExperimentRecord:
    """The experiment's name, description and manifest path."""
    with db.session() as session:
        experiment = session.get(Experiment, find_experiment_id(session, db, name))
        assert experiment is not None
        return ExperimentRecord(experiment.name, experiment.description, experiment.manifest_path)


def run_configs(db: Database, experiment: str) -> dict[str, dict[str, Any]]:
    """{run name in the experiment: its resolved configuration} (a CRF job's: what it runs)."""
    with db.session() as session:
        stmt = (
            select(Membership.name, Run.config_json)
            .join(Membership.run)
            .where(Membership.experiment_id == find_experiment_id(session, db, experiment))
            .order_by(Membership.position, Membership.name)
        )
        return {name: dict(config) for name, config in session.execute(stmt)}


def metric_points(db: Database, experiment: str) -> list[TrainingPoint]:
    """Every stored training report of the experiment's train runs, by run then iteration."""
    with db.session() as session:
        stmt = (
            select(
                Membership.name,
                Membership.method,
                Membership.group_label,
                Run.config_json,
                MetricPoint,
            )
            .join(Membership.run)
            .join(MetricPoint, MetricPoint.run_id == Run.id)
            .where(
                Membership.experiment_id == find_experiment_id(session, db, experiment),
                Run.kind == JobKind.TRAIN,
            )
            .order_by(Membership.position, Membership.name, MetricPoint.iteration)
        )
        return [
            TrainingPoint(
                run=name,
                method=method,
                group=group,
                seed=config.get("seed"),
                iteration=point.iteration,
                loss=point.loss,
                lr=point.lr,
            )
            for name, method, group, config, point in session.execute(stmt)
        ]
