"""Storing what the engine and the CRF return (`rmi_cli.records`) against a run.

Re-storing replaces: a resumed run re-recording an iteration, a re-evaluation of a split, a CRF
re-run at the same iteration count. Environments (`Fingerprint`s) are stored once per distinct
fingerprint. Scores must be fractions in [0, 1]; a percentage here is a bug upstream.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rmi_cli.db.database import Database, get_or_insert
from rmi_cli.db.evidence import evidence_values
from rmi_cli.db.schema import (
    ClassIoU,
    Environment,
    Evaluation,
    ImageEvidence,
    MetricPoint,
    Run,
    TrainSummary,
)
from rmi_cli.errors import DatabaseError
from rmi_cli.records import (
    CRFResult,
    EvalResult,
    Fingerprint,
    ImageCounts,
    InferenceTiming,
    SegmentationScores,
    TrainMetrics,
    TrainResult,
)

NO_POSTPROCESS = "none"
# Bound parameters per IN (...) list: far below SQLite's limit of 32766 variables.
_CHUNK = 500


def crf_postprocess(iterations: int) -> str:
    """The `postprocess` value of a CRF evaluation: "crf-5" for 5 mean-field iterations."""
    return f"crf-{iterations}"


def store_train_result(db: Database, run_id: int, result: TrainResult) -> None:
    """Store (or replace) the run's training summary; the run remembers its checkpoint.

    A result that trained nothing (the run was found finished: its worker died while
    evaluating) keeps the stored time, throughput, memory and environment: they were measured.
    """

    def work(session: Session) -> None:
        run = _run(session, db, run_id)
        summary = session.get(TrainSummary, run_id)
        if summary is not None and result.resumed_from == result.iterations == summary.iterations:
            summary.checkpoint_path = run.checkpoint_path = result.checkpoint
            return
        environment = _environment(session, result.fingerprint)
        summary = summary or TrainSummary(run_id=run_id)
        summary.checkpoint_path = result.checkpoint
        summary.iterations, summary.final_loss = result.iterations, result.final_loss
        summary.train_time_s, summary.images_per_s = result.train_time_s, result.images_per_s
        summary.peak_train_memory_mb = result.peak_train_memory_mb
        summary.rmi_fallbacks, summary.resumed_from = result.rmi_fallbacks, result.resumed_from
        summary.world_size, summary.batch_per_rank = result.world_size, result.batch_per_rank
        summary.environment_id = environment.id
        session.add(summary)
        run.checkpoint_path, run.environment_id = result.checkpoint, environment.id

    db.transaction(work)


def store_metrics(db: Database, run_id: int, metrics: Sequence[TrainMetrics]) -> int:
    """Store training reports; an iteration stored before is replaced (a resumed run repeats
    the iterations after its last checkpoint). Returns the number of iterations stored."""
    latest = {point.iteration: point for point in metrics}

    def work(session: Session) -> int:
        _run(session, db, run_id)
        iterations = sorted(latest)
        for start in range(0, len(iterations), _CHUNK):
            chunk = iterations[start : start + _CHUNK]
            session.execute(
                delete(MetricPoint).where(
                    MetricPoint.run_id == run_id, MetricPoint.iteration.in_(chunk)
                )
            )
        session.add_all(_metric_point(run_id, latest[i]) for i in iterations)
        return len(iterations)

    return db.transaction(work)


def store_evaluation(db: Database, run_id: int, result: EvalResult) -> int:
    """Store (or replace) the run's evaluation on `result.split`; returns its id."""
    values = {
        **_score_values(result.scores),
        **_timing_values(result.timing),
        "num_images": result.num_images,
        "peak_eval_memory_mb": result.peak_eval_memory_mb,
        "probs_dir": result.probs_dir,
        "total_median_ms": result.timing.median_ms if result.timing else None,
    }
    return db.transaction(
        lambda session: _replace_evaluation(
            session, db, run_id, result.split, NO_POSTPROCESS, values, result
        )
    )


def store_crf(
    db: Database,
    run_id: int,
    result: CRFResult,
    *,
    network_timing: InferenceTiming | None = None,
) -> int:
    """Store (or replace) CRF post-processing as evaluation "crf-N" of `run_id` (a CRF job, or
    the train run itself). The total time per image is the network's median plus the CRF's;
    without `network_timing`, the network time of the stored plain evaluation of the trained
    run on the same split is used. Returns the evaluation id."""

    def work(session: Session) -> int:
        run = _run(session, db, run_id)
        if network_timing is not None:
            timing = _timing_values(network_timing)
        else:
            timing = _stored_network_timing(session, run.depends_on or run, result.split)
        network_ms = timing.get("inference_median_ms")
        values = {
            **_score_values(result.scores),
            **timing,
            "num_images": result.num_images,
            "crf_median_ms": result.crf_median_ms,
            "crf_p90_ms": result.crf_p90_ms,
            "crf_workers": result.workers,
            "crf_params_json": dict(result.params),
            "total_median_ms": None if network_ms is None else network_ms + result.crf_median_ms,
        }
        postprocess = crf_postprocess(result.iterations)
        return _replace_evaluation(session, db, run_id, result.split, postprocess, values, result)

    return db.transaction(work)


def fingerprint_hash(fingerprint: Fingerprint) -> str:
    text = json.dumps(fingerprint.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _run(session: Session, db: Database, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise DatabaseError(f"{db.url}: no run with id {run_id}; `rmi status` lists the runs")
    return run


def _environment(session: Session, fingerprint: Fingerprint) -> Environment:
    digest = fingerprint_hash(fingerprint)
    environment, _ = get_or_insert(
        session,
        select(Environment).where(Environment.fingerprint_hash == digest),
        lambda: Environment(fingerprint_hash=digest, **fingerprint.to_dict()),
    )
    return environment


def _metric_point(run_id: int, point: TrainMetrics) -> MetricPoint:
    return MetricPoint(
        run_id=run_id,
        iteration=point.iteration,
        loss=point.loss,
        lr=point.lr,
        images_per_s=point.images_per_s,
        elapsed_s=point.elapsed_s,
        rmi_fallbacks=point.rmi_fallbacks,
        extra_json=dict(point.extra),
    )


def _replace_evaluation(
    session: Session,
    db: Database,
    run_id: int,
    split: str,
    postprocess: str,
    values: dict[str, Any],
    result: EvalResult | CRFResult,
) -> int:
    _run(session, db, run_id)
    old = session.scalars(
        select(Evaluation).where(
            Evaluation.run_id == run_id,
            Evaluation.split == split,
            Evaluation.postprocess == postprocess,
        )
    ).first()
    if old is not None:
        session.delete(old)  # its class_iou rows go with it (ON DELETE CASCADE)
        session.flush()
    scores = result.scores
    evaluation = Evaluation(
        run_id=run_id,
        split=split,
        postprocess=postprocess,
        environment_id=_environment(session, result.fingerprint).id,
        **values,
    )
    boundary = scores.boundary_iou or (None,) * len(scores.iou)
    evaluation.classes = [
        ClassIoU(class_index=index, class_name=name, iou=iou, boundary_iou=edge)
        for index, (name, iou, edge) in enumerate(
            zip(scores.class_names, scores.iou, boundary, strict=True)
        )
    ]
    if result.image_counts is not None:
        evaluation.evidence = _evidence(result.image_counts, result, run_id)
    session.add(evaluation)
    session.flush()
    return evaluation.id


def _evidence(counts: ImageCounts, result: EvalResult | CRFResult, run_id: int) -> ImageEvidence:
    classes = len(result.scores.class_names)
    if counts.counts.shape[0] != result.num_images or counts.num_classes != classes:
        raise ValueError(
            f"run {run_id}: per-image counts of shape {counts.counts.shape} do not fit "
            f"{result.num_images} images of {classes} classes"
        )
    return ImageEvidence(**evidence_values(counts))


def _score_values(scores: SegmentationScores) -> dict[str, Any]:
    for name in ("miou", "pixel_accuracy", "mean_accuracy"):
        _check_fraction(name, getattr(scores, name))
    if scores.boundary_miou is not None and not math.isnan(scores.boundary_miou):
        _check_fraction("boundary mIoU", scores.boundary_miou)
    for class_name, iou in zip(scores.class_names, scores.iou, strict=True):
        if iou is not None:
            _check_fraction(f"IoU of class {class_name!r}", iou)
    return {
        "boundary_miou": _finite(scores.boundary_miou),
        "miou": scores.miou,
        "pixel_accuracy": scores.pixel_accuracy,
        "mean_accuracy": scores.mean_accuracy,
        "excluded_classes_json": list(scores.excluded_classes),
        "confusion_json": [list(row) for row in scores.confusion],
    }


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _check_fraction(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a fraction in [0, 1]; got {value}")


def _timing_values(timing: InferenceTiming | None) -> dict[str, Any]:
    if timing is None:
        return {}
    return {
        "inference_median_ms": timing.median_ms,
        "inference_p90_ms": timing.p90_ms,
        "inference_mean_ms": timing.mean_ms,
        "timing_protocol_json": asdict(timing),
    }


def _stored_network_timing(session: Session, trained: Run, split: str) -> dict[str, Any]:
    plain = session.scalars(
        select(Evaluation).where(
            Evaluation.run_id == trained.id,
            Evaluation.split == split,
            Evaluation.postprocess == NO_POSTPROCESS,
        )
    ).first()
    if plain is None or plain.inference_median_ms is None:
        return {}
    return {
        "inference_median_ms": plain.inference_median_ms,
        "inference_p90_ms": plain.inference_p90_ms,
        "inference_mean_ms": plain.inference_mean_ms,
        "timing_protocol_json": plain.timing_protocol_json,
    }
