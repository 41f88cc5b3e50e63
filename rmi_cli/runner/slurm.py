"""`rmi submit`: queue an experiment and put K ordinary `rmi worker` processes on a Slurm cluster
through submitit (or, to try it, on this machine through submitit's local executor), all sharing
one database server."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmi_cli import db as store
from rmi_cli.errors import DependencyMissing, RunFailed, UserError
from rmi_cli.launch import Submission, parse_time
from rmi_cli.manifest import ExperimentPlan
from rmi_cli.run_folder import runs_root
from rmi_cli.runner.ranks import check_divides
from rmi_cli.runner.submit import describe_enqueued, enqueue_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlurmRequest:
    """What to submit: K jobs, each one `rmi worker` on N GPUs for at most `time_limit`."""

    jobs: int = 1
    partition: str | None = None  # None: submitit's local executor on this machine
    gpus_per_job: int = 1
    time_limit: str = "24:00:00"  # Slurm's formats: minutes, H:M:S, D-H:M:S...
    logs: Path = Path("slurm")  # submitit's folder: job scripts, pickles, logs


@dataclass(frozen=True)
class SubmitOutcome:
    """The queued experiment and the submitted jobs (submitit `Job`s; `job_ids` for people)."""

    enqueued: store.EnqueueReport
    jobs: list[Any]
    folder: str

    @property
    def job_ids(self) -> list[str]:
        return [str(job.job_id) for job in self.jobs]

    def wait(self) -> None:
        """Wait for every job (local runs); `RunFailed` naming the jobs that failed."""
        for job in self.jobs:
            job.wait()
        failed = [str(job.job_id) for job in self.jobs if job.exception() is not None]
        if failed:
            raise RunFailed(f"job(s) {', '.join(failed)} failed; see their logs in {self.folder}")


def submit_workers(
    db: str | None, plan: ExperimentPlan, request: SlurmRequest, *, runs_dir: Path | None = None
) -> SubmitOutcome:
    """Queue `plan` (idempotent) in the database server `db` and submit `request.jobs` jobs,
    each running `rmi worker --db DB -e E --wait --runs-dir R` (with --gpus-per-job N)."""
    minutes = _minutes(request.time_limit)
    target = _server_url(db)
    for run in plan.runs:
        check_divides(run.config.train.batch_size, request.gpus_per_job, f"run {run.name}")
    with store.open_database(target) as database:
        enqueued = enqueue_plan(database, plan)
    for line in describe_enqueued(enqueued):
        log.info(line)
    folder = runs_root(runs_dir, None)  # a server: the jobs must share this folder
    argv = [sys.executable, "-m", "rmi_cli", "worker", "--db", target, "-e", plan.name, "--wait"]
    argv += ["--runs-dir", str(folder)]
    argv += ["--gpus-per-job", str(request.gpus_per_job)] if request.gpus_per_job > 1 else []
    submission = Submission(
        worker_argv=tuple(argv),
        jobs=request.jobs,
        folder=str(request.logs.resolve()),
        name=f"rmi-{plan.name}",
        minutes=minutes,
        gpus_per_job=request.gpus_per_job,
        partition=request.partition,
    )
    try:
        jobs = submission.submit()
    except ImportError:
        raise DependencyMissing(
            "rmi submit needs submitit: pip install 'rmi-cli[slurm]' (or pip install submitit)"
        ) from None
    log.info(f"{len(jobs)} job(s) submitted; logs in {submission.folder}; watch: rmi status")
    return SubmitOutcome(enqueued, jobs, submission.folder)


def _minutes(time_limit: str) -> int:
    try:
        return parse_time(time_limit)
    except ValueError:
        raise UserError(
            f"--time: expected a Slurm time limit such as 90, 4:00:00 or 2-00:00:00; "
            f"found {time_limit!r}"
        ) from None


def _server_url(db: str | None) -> str:
    """The database the jobs will use: a server; an SQLite file is refused."""
    target = db or os.environ.get(store.ENV_VAR) or "rmi.db"
    _, path = store.resolve_target(target)
    if path is not None:
        # SQLite's locks do not hold across machines (network file systems break them).
        raise UserError(
            f"rmi submit: --db is the SQLite file {path}; jobs on other nodes need a database "
            f"server they all reach: --db postgresql://user@host/rmi"
        )
    return target
