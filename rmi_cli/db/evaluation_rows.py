"""Evaluation records for tables and reports: one per (run of an experiment x split x
post-processing), with the per-image counts, the environment and the network time a CRF row
adds to (`rmi_cli.stored.EvaluationRecord`)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from rmi_cli.db.database import Database
from rmi_cli.db.evidence import read_evidence
from rmi_cli.db.results import NO_POSTPROCESS
from rmi_cli.db.rows import config_fields, find_experiment_id, run_ids
from rmi_cli.db.schema import Environment, Evaluation, Membership, Run, TrainSummary
from rmi_cli.records import Fingerprint
from rmi_cli.stored import EvaluationRecord


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
        summaries = _by_id(session, TrainSummary, TrainSummary.run_id, run_ids(sources.values()))
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
    } | config_fields(source)


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
