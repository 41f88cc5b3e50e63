"""One run in the foreground (`rmi train`, `rmi eval`, `rmi crf`): queue it, then work on it in
this process, so that the database knows about it and another worker can take it over."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rmi_cli import db as store
from rmi_cli.config import CRFConfig
from rmi_cli.manifest import ExperimentPlan
from rmi_cli.records import EvalResult
from rmi_cli.runner import lookup
from rmi_cli.runner.opening import DatabaseTarget, opened
from rmi_cli.runner.preflight import check_datasets
from rmi_cli.runner.ranks import check_divides
from rmi_cli.runner.submit import enqueue_plan
from rmi_cli.runner.worker import DrainReport, wait_for_training, work_on, worker_options

if TYPE_CHECKING:
    from rmi_cli.engine.distributed import Ranks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    """What `train` did: the run's job, and the worker's report (None: it was done already)."""

    label: str  # experiment/name
    job: store.Enqueued
    report: DrainReport | None


def train(
    database: DatabaseTarget,
    plan: ExperimentPlan,
    *,
    runs_dir: Path | None = None,
    wait: bool = False,
    ranks: Ranks | None = None,
) -> TrainOutcome:
    """Train and evaluate the plan's one run here (see `lookup.single_run_plan`), storing
    everything; a done run is not trained again, an interrupted one resumes (at once when the
    worker that ran it on this host is gone). Held by another worker: `JobHeld`, or with `wait`
    wait for it. The datasets are opened first: one that cannot be read queues nothing (and
    creates no database). With `ranks` (this process is rank 0 under torchrun) the other ranks
    train it too; a batch that does not divide among them is refused before anything is
    queued."""
    data = plan.runs[0].config.data
    if ranks is not None:
        check_divides(plan.runs[0].config.train.batch_size, ranks.world_size, "torchrun")
    check_datasets([(data, data.train_split), (data, data.eval_split)])
    with opened(database) as db:
        return _train(db, plan, runs_dir, wait, ranks)


def _train(
    database: store.Database,
    plan: ExperimentPlan,
    runs_dir: Path | None,
    wait: bool,
    ranks: Ranks | None,
) -> TrainOutcome:
    report = enqueue_plan(database, plan)
    (name, queued), *_ = report.jobs
    label = f"{plan.name}/{name}"
    if report.repointed:
        log.info(
            f"{label}: configuration changed; the experiment now uses this run "
            f"(the old run stays in the database)"
        )
    if queued.status == "done":
        log.info(f"{label} is already done (config {queued.config_hash}); see rmi table")
        return TrainOutcome(label, queued, None)
    options = worker_options(database, runs_dir, ranks=ranks)
    work = work_on(database, options, queued.run_id, wait=wait, command="rmi train")
    return TrainOutcome(label, queued, work)


@dataclass(frozen=True)
class EvaluationOutcome:
    """Scores of one evaluation, and whether (or why not) they were stored."""

    result: EvalResult
    label: str
    stored: bool
    not_stored: str | None  # the reason, when not stored


def evaluate(
    database: store.Database,
    *,
    run: str | None = None,
    checkpoint: Path | None = None,
    split: str | None = None,
    max_images: int | None = None,
    save_probs: bool = False,
    runs_dir: Path | None = None,
    progress: bool = True,
    wait: bool = False,
) -> EvaluationOutcome:
    """Evaluate a run (name, experiment/name or hash) or a checkpoint file on a split; the
    scores are stored when they are the run's (its final weights, the whole split). A run still
    in training elsewhere: `JobHeld`, or with `wait` wait until its training has ended."""
    if run is not None:
        wait_for_training(database, lookup.find_run(database, run).run_id, wait=wait)
    target = lookup.evaluation_target(database, runs_dir, run, checkpoint)
    # torch loads in seconds: only once the arguments are known to be good.
    from rmi_cli.engine import evaluate_run

    result = evaluate_run(
        target.config,
        checkpoint=target.checkpoint,
        split=split,
        workdir=target.workdir,
        save_probs=save_probs,
        max_images=max_images,
        progress=progress,
    )
    if max_images is not None:
        # A subset's scores must not replace the run's evaluation of the whole split.
        reason = f"--max-images {max_images} evaluates part of the split"
        return EvaluationOutcome(result, target.label, False, reason)
    if target.run_id is None:
        return EvaluationOutcome(result, target.label, False, target.not_stored)
    store.store_evaluation(database, target.run_id, result)
    return EvaluationOutcome(result, target.label, True, None)


@dataclass(frozen=True)
class CRFOutcome:
    """The CRF step's job, and the worker's report (None: its results were stored already)."""

    job: store.Enqueued
    report: DrainReport | None


def crf(
    database: store.Database,
    run: str,
    *,
    iters: Sequence[int] = (1, 5, 10),
    split: str | None = None,
    workers: int | None = None,
    runs_dir: Path | None = None,
    wait: bool = False,
) -> CRFOutcome:
    """Dense-CRF post-processing of a trained run with the paper's settings, for each count in
    `iters` (the step grows: counts stored before are kept), on `workers` processes. Held by
    another worker (or waiting for a run that is): `JobHeld`, or with `wait` wait for it."""
    params = CRFConfig(iters=tuple(iters))
    job = lookup.queue_crf(database, run, params, split)
    if job.status == "done":
        log.info(
            f"CRF {', '.join(map(str, params.iters))} on {run} is already stored; see rmi table"
        )
        return CRFOutcome(job, None)
    options = worker_options(database, runs_dir, crf_workers=workers)
    return CRFOutcome(job, work_on(database, options, job.run_id, wait=wait, command="rmi crf"))
