"""The read side for reports and `rmi status`: one frozen record per row (`rmi_cli.stored`).

The report layer turns these into DataFrames; fractions stay fractions (IoU 0.734, not 73.4),
times are milliseconds, memory megabytes.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from rmi_cli.db.database import Database
from rmi_cli.db.evidence import read_evidence
from rmi_cli.db.results import NO_POSTPROCESS
from rmi_cli.db.schema import (
    Environment,
    Evaluation,
    Experiment,
    JobStatus,
    Membership,
    MetricPoint,
    Run,
    TrainSummary,
    utcnow,
)
from rmi_cli.errors import DatabaseError
from rmi_cli.records import Fingerprint
from rmi_cli.stored import EvaluationRecord, MetricsRecord, RunRecord, ThroughputRecord


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


def evaluation_rows(
    db: Database, *, experiment: str, split: str | None = None
) -> list[EvaluationRecord]:
    """One record per (run of the experiment x split x post-processing), in the experiment's
    run order, plain evaluation first, then CRF by iterations; with each evaluation's per-image
    counts (`image_counts`, None when stored before revision 0004) and environment."""
    with db.session() as session:
        experiment_id = find_experiment_id(session, db, experiment)
        members = session.execute(
            select(Membership, Run)
            .join(Membership.run)
            .where(Membership.experiment_id == experiment_id)
            .order_by(Membership.position, Membership.name)
            .options(selectinload(Run.depends_on))
        ).all()
        sources = {run.id: run.depends_on or run for _, run in members}
        evaluations = _evaluations(session, sources, split)
        summaries = _by_id(session, TrainSummary, TrainSummary.run_id, _ids(sources.values()))
        post_processed = {
            sources[run_id].id
            for run_id, rows in evaluations.items()
            if any(e.postprocess != NO_POSTPROCESS for e in rows)
        }
        networks = _network_evaluations(session, post_processed)
        environment_ids = {e.environment_id for rows in evaluations.values() for e in rows}
        environments = _by_id(session, Environment, Environment.id, environment_ids)
        rows = []
        for member, run in members:
            source = sources[run.id]
            summary = summaries.get(source.id)
            for evaluation in evaluations[run.id]:
                environment = environments[evaluation.environment_id]
                network = networks.get((source.id, evaluation.split))
                where = f"{db.url}: evaluation {evaluation.id} of run {member.name}"
                fields = (
                    _membership_fields(experiment, member, run, source)
                    | _evaluation_fields(evaluation, where)
                    | _current_network_time(evaluation, network)
                    | {
                        "peak_train_memory_mb": summary.peak_train_memory_mb if summary else None,
                        "device": environment.device,
                        "torch": environment.torch,
                        "environment": _environment_fields(environment),
                    }
                )
                rows.append(EvaluationRecord(**fields))
        return rows


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
                **_config_fields(run.depends_on or run),
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
                    **_config_fields(run.depends_on or run),
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


def _ids(runs: Iterable[Run]) -> set[int]:
    return {run.id for run in runs}


def _by_id(session: Session, model: type, column: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows: Iterable[Any] = session.scalars(select(model).where(column.in_(sorted(ids))))
    return {getattr(row, column.key): row for row in rows}


def _evaluations(
    session: Session, sources: dict[int, Run], split: str | None
) -> dict[int, list[Evaluation]]:
    stmt = (
        select(Evaluation)
        .where(Evaluation.run_id.in_(sorted(sources)))
        .options(selectinload(Evaluation.classes), selectinload(Evaluation.evidence))
    )
    if split is not None:
        stmt = stmt.where(Evaluation.split == split)
    grouped: dict[int, list[Evaluation]] = defaultdict(list)
    for evaluation in session.scalars(stmt):
        grouped[evaluation.run_id].append(evaluation)
    for rows in grouped.values():
        rows.sort(key=lambda e: (e.split, *_postprocess_order(e.postprocess)))
    return grouped


def _network_evaluations(session: Session, run_ids: set[int]) -> dict[tuple[int, str], Evaluation]:
    """The plain evaluations of the runs whose CRF results are shown, by (run id, split)."""
    if not run_ids:
        return {}
    stmt = select(Evaluation).where(
        Evaluation.run_id.in_(sorted(run_ids)), Evaluation.postprocess == NO_POSTPROCESS
    )
    return {(e.run_id, e.split): e for e in session.scalars(stmt)}


def _current_network_time(evaluation: Evaluation, network: Evaluation | None) -> dict[str, Any]:
    """A CRF row's network time as its trained run's evaluation has it now (evaluated again
    since the CRF ran, the network time changed; the CRF's own time did not)."""
    if evaluation.postprocess == NO_POSTPROCESS or network is None:
        return {}
    if network.inference_median_ms is None:
        return {}
    crf_ms = evaluation.crf_median_ms
    return {
        "inference_median_ms": network.inference_median_ms,
        "inference_p90_ms": network.inference_p90_ms,
        "total_median_ms": None if crf_ms is None else network.inference_median_ms + crf_ms,
        "protocol": network.timing_protocol_json,
    }


def _postprocess_order(postprocess: str) -> tuple[int, str]:
    if postprocess == NO_POSTPROCESS:
        return (-1, "")
    _, _, iterations = postprocess.partition("-")
    return (int(iterations), "") if iterations.isdigit() else (1 << 30, postprocess)


def _membership_fields(
    experiment: str, member: Membership, run: Run, source: Run
) -> dict[str, Any]:
    config = source.config_json
    return {
        "experiment": experiment,
        "run": member.name,
        "run_id": run.id,
        "config_hash": run.config_hash,
        "seed": config.get("seed"),
        "method": member.method,
        "group": member.group_label,
        "model": config.get("model", {}).get("name"),
        "backbone": config.get("model", {}).get("backbone"),
        "loss": config.get("loss", {}).get("name"),
        "params": dict(member.params_json),
        "status": run.status,
    } | _config_fields(source)


def _config_fields(source: Run) -> dict[str, Any]:
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


def _environment_fields(environment: Environment) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(Fingerprint)]
    return {name: getattr(environment, name) for name in names}


def _evaluation_fields(evaluation: Evaluation, where: str) -> dict[str, Any]:
    evidence = evaluation.evidence
    return {
        "split": evaluation.split,
        "postprocess": evaluation.postprocess,
        "miou": evaluation.miou,
        "pixel_accuracy": evaluation.pixel_accuracy,
        "mean_accuracy": evaluation.mean_accuracy,
        "num_images": evaluation.num_images,
        "class_iou": {c.class_name: c.iou for c in evaluation.classes},
        "boundary_miou": evaluation.boundary_miou,
        "class_boundary_iou": (
            {c.class_name: c.boundary_iou for c in evaluation.classes}
            if evaluation.boundary_miou is not None
            else {}
        ),
        "image_counts": None if evidence is None else read_evidence(evidence, where),
        "crf_params": evaluation.crf_params_json,
        "evaluated_at": evaluation.created_at,
        "inference_median_ms": evaluation.inference_median_ms,
        "inference_p90_ms": evaluation.inference_p90_ms,
        "crf_median_ms": evaluation.crf_median_ms,
        "total_median_ms": evaluation.total_median_ms,
        "peak_eval_memory_mb": evaluation.peak_eval_memory_mb,
        "protocol": evaluation.timing_protocol_json,
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
