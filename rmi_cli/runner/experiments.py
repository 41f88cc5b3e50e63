"""Whole experiments: queue one (`rmi ablate`), run it with local workers, plan it dry, and the
demo's quickstart."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rmi_cli import db as store
from rmi_cli.config import DataConfig
from rmi_cli.manifest import ExperimentPlan
from rmi_cli.resources import experiments_manifest
from rmi_cli.run_folder import runs_root
from rmi_cli.runner.estimate import PlanEstimate, estimate_plan
from rmi_cli.runner.lookup import plan_experiment
from rmi_cli.runner.opening import DatabaseTarget, opened
from rmi_cli.runner.preflight import check_datasets, check_weights, weights_warnings
from rmi_cli.runner.submit import describe_enqueued, enqueue_plan, with_stored_counts
from rmi_cli.runner.worker import DrainReport, drain, worker_options

DEMO_EXPERIMENT = "quickstart"
log = logging.getLogger(__name__)


def queue_experiment(
    database: DatabaseTarget,
    plan: ExperimentPlan,
    *,
    requeue_failed: bool = False,
    check_data: bool = False,
) -> store.EnqueueReport:
    """Record the experiment and queue whatever of it is not queued or done yet (idempotent by
    configuration hash). With `check_data`, every dataset and split the plan reads must open on
    this machine first (a `DataError` queues nothing and creates no database). A weights file
    the runs cannot read here is a warning: they may run elsewhere."""
    if check_data:
        check_datasets(_needs(plan))
    _warn_weights(plan)
    with opened(database) as db:
        return enqueue_plan(db, plan, requeue_failed=requeue_failed)


def dry_run(database: store.Database | None, plan: ExperimentPlan) -> PlanEstimate:
    """What queueing `plan` would run and what it would cost; writes nothing (`database`
    None: a database that does not exist yet, so nothing is stored)."""
    if database is not None:
        plan = with_stored_counts(database, plan)
    return estimate_plan(database, plan)


@dataclass(frozen=True)
class AblateOutcome:
    """What `ablate` queued, what its workers did (None: it only queued), and the experiment's
    jobs per status afterwards."""

    enqueued: store.EnqueueReport
    report: DrainReport | None
    counts: dict[str, int]
    database_url: str


def ablate(
    database: DatabaseTarget,
    plan: ExperimentPlan,
    *,
    workers: int = 1,
    gpus: Sequence[str] = (),
    requeue_failed: bool = False,
    runs_dir: Path | None = None,
) -> AblateOutcome:
    """Queue the experiment, then run its queue: in this process (`workers=1`, no `gpus`), with
    one `rmi worker` process per slot (`workers=N`, or one per GPU pinned with
    CUDA_VISIBLE_DEVICES), or not at all (`workers=0`: start `rmi worker` elsewhere). Work that
    starts here must read its weights files (`ConfigError`) and open its datasets before
    anything is queued; work queued for elsewhere only warns about weights (logged)."""
    count = len(gpus) or workers
    if count:
        check_weights(plan)
        check_datasets(_needs(plan))
    else:
        _warn_weights(plan)
    with opened(database) as db:
        enqueued = enqueue_plan(db, plan, requeue_failed=requeue_failed)
        for line in describe_enqueued(enqueued):
            log.info(line)
        report = None
        if count == 1 and not gpus:
            report = drain(db, worker_options(db, runs_dir), experiment=plan.name, wait=True)
        elif count:
            command = worker_command(db, _worker_db(database), plan.name, runs_dir)
            report = spawn_workers(command, list(gpus) or [None] * count)
        return AblateOutcome(enqueued, report, store.status_counts(db, plan.name), db.url)


def worker_command(
    database: store.Database, database_arg: str | None, experiment: str, runs_dir: Path | None
) -> list[str]:
    """The command line of one local `rmi worker` process for `experiment`."""
    command = [sys.executable, "-m", "rmi_cli", "worker", "--wait", "-e", experiment]
    command += ["--runs-dir", str(runs_root(runs_dir, database.path))]
    return command + (["--db", database_arg] if database_arg else [])


def _worker_db(target: DatabaseTarget) -> str | None:
    """What worker processes get as --db: the caller's own text (a URL keeps its password) or
    an open database's file or URL; None: they resolve $RMI_DB or ./rmi.db as this process."""
    if isinstance(target, store.Database):
        if target.path is not None:
            return str(target.path)
        return target.engine.url.render_as_string(hide_password=False)
    return None if target is None else str(target)


def spawn_workers(command: list[str], devices: Sequence[str | None]) -> DrainReport:
    """Start one worker process per slot (pinned to a GPU when given); wait for all."""
    processes = []
    for device in devices:
        env = dict(os.environ)
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        processes.append(subprocess.Popen(command, env=env))
    failed = sum(process.wait() != 0 for process in processes)
    report = DrainReport()
    if failed:
        report.failed.append(f"{failed} of {len(processes)} workers (see their messages above)")
    return report


@dataclass(frozen=True)
class DemoOutcome:
    """The quickstart's plan and what its worker did."""

    plan: ExperimentPlan
    report: DrainReport


def demo(
    database: store.Database,
    *,
    manifest: Path | None = None,
    overrides: Sequence[str] = (),
    runs_dir: Path | None = None,
) -> DemoOutcome:
    """Queue the quickstart experiment (of the shipped manifest unless told; `overrides` as
    `--set` gives them) and run it to the end in this process."""
    plan = plan_experiment(manifest or experiments_manifest(), DEMO_EXPERIMENT, overrides)
    for line in describe_enqueued(enqueue_plan(database, plan)):
        log.info(line)
    options = worker_options(database, runs_dir)
    return DemoOutcome(plan, drain(database, options, experiment=plan.name, wait=True))


def _warn_weights(plan: ExperimentPlan) -> None:
    for message in weights_warnings(plan):  # the machines that run the jobs may have them
        log.warning(message)


def _needs(plan: ExperimentPlan) -> list[tuple[DataConfig, str]]:
    needs = [(r.config.data, s) for r in plan.runs for s in _splits(r.config.data)]
    return needs + [(step.target.config.data, step.split) for step in plan.crf_steps]


def _splits(data: DataConfig) -> tuple[str, str]:
    return data.train_split, data.eval_split
