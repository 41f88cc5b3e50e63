"""A worker's loop (`rmi worker`): claim jobs and run them until the queue, or the chosen part
of it, is empty."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rmi_cli import db as store
from rmi_cli.engine.signals import stop_on_signals
from rmi_cli.errors import JobHeld, RunFailed, UserError
from rmi_cli.run_folder import runs_root
from rmi_cli.runner.holders import describe_holder, holder_is_gone, worker_name
from rmi_cli.runner.jobs import RanksLost, StopFlag, WorkerOptions, run_job

if TYPE_CHECKING:
    from rmi_cli.engine.distributed import Ranks

POLL_S = 5.0  # how often a waiting worker looks for claimable jobs again
log = logging.getLogger(__name__)


@dataclass
class DrainReport:
    """What one worker did."""

    worker: str = ""  # its name on the queue ("host:pid")
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Raise `RunFailed` (exit code 1) when any job failed."""
        if self.failed:
            raise RunFailed(f"{len(self.failed)} job(s) failed: {', '.join(self.failed)}")


def drain(
    database: store.Database,
    options: WorkerOptions,
    *,
    experiment: str | None = None,
    run_ids: Collection[int] | None = None,
    max_jobs: int | None = None,
    wait: bool = False,
    poll_s: float = POLL_S,
) -> DrainReport:
    """Run claimable jobs until none is left. With `wait`, keep polling while jobs in scope are
    still queued or running elsewhere (a CRF step waiting for its run, a stale lease to take
    over). SIGINT/SIGTERM checkpoint the current run, give it back, and raise `Interrupted`."""
    report = DrainReport(options.worker)
    with stop_on_signals(escalate=options.ranks is None) as stop:
        while not stop() and (max_jobs is None or len(report.done + report.failed) < max_jobs):
            take_over_dead_holders(database, experiment, run_ids)
            job = store.claim(
                database,
                worker=options.worker,
                lease_s=options.lease_s,
                experiment=experiment,
                run_ids=run_ids,
            )
            if job is None:
                if wait and _pending(database, experiment, run_ids):
                    time.sleep(poll_s)
                    continue
                break
            _run_one(database, job, options, stop, report)
    return report


def work_on(
    database: store.Database, options: WorkerOptions, job_id: int, *, wait: bool, command: str
) -> DrainReport:
    """Run one job here (`rmi train`, `rmi crf`): claim it, or take it over from a worker of
    this host whose process is gone. Held by a live worker (or one on another host), or waiting
    for a run that is: `JobHeld` saying who holds it until when, or with `wait`, wait for it
    (and take it over should its lease run out)."""
    report = drain(database, options, run_ids=[job_id])
    if report.done or report.failed:
        return report
    held = holder_line(database, job_id)
    if held is None:
        return report
    if not wait:
        raise JobHeld(f"{held}; `{command} --wait` waits for it (and takes it over if it stops)")
    log.info(f"{held}; waiting for it (Ctrl-C stops waiting)")
    return drain(database, options, run_ids=[job_id], wait=True)


def wait_for_training(
    database: store.Database, job_id: int, *, wait: bool, poll_s: float = POLL_S
) -> None:
    """Return once the job is not running (`rmi eval` reads its final checkpoint). Held by a
    live worker: `JobHeld`, or with `wait` poll until it is done; its worker gone from this
    host: a `UserError` saying how to resume it (evaluating does not train)."""
    announced = False
    while (job := store.get_job(database, job_id)) is not None and job.status == "running":
        expired = job.lease_expires_at is not None and job.lease_expires_at < datetime.now(UTC)
        if expired or (job.worker and holder_is_gone(job.worker)):
            why = "lease expired" if expired else "process is gone"
            raise UserError(
                f"run {job.label} stopped training: its worker {job.worker}'s {why}; resume it "
                f"with `rmi worker` (or rmi train), then evaluate it"
            )
        held = describe_holder(job, f"run {job.label}")
        if not wait:
            raise JobHeld(
                f"{held}; `rmi eval --wait` waits for its training to end (or evaluate its "
                f"latest weights as they are with --checkpoint)"
            )
        if not announced:
            log.info(f"{held}; waiting for its training to end")
            announced = True
        time.sleep(poll_s)


def holder_line(database: store.Database, job_id: int) -> str | None:
    """Who holds the job, or the run it waits for; None when neither is held."""
    job = store.get_job(database, job_id)
    if job is None:
        return None
    if job.status == "running":
        return describe_holder(job, f"run {job.label}")
    if job.status == "queued" and job.depends_on_id is not None:
        before = store.get_job(database, job.depends_on_id)
        if before is not None and before.status == "running":
            return describe_holder(before, f"{job.label} waits for run {before.label}, which")
    return None


def take_over_dead_holders(
    database: store.Database, experiment: str | None, run_ids: Collection[int] | None
) -> list[store.Job]:
    """End the leases of running jobs in scope whose worker process on this host is gone (a
    `kill -9`, a crash), so that the next claim resumes them now instead of after the lease."""
    freed = []
    for job in store.running_jobs(database, experiment=experiment, run_ids=run_ids):
        worker = job.worker
        if worker and holder_is_gone(worker) and store.expire_lease(database, job.id, worker):
            log.info(f"{job.label}: its worker {job.worker} is gone (no such process here)")
            freed.append(job)
    return freed


def _run_one(
    database: store.Database,
    job: store.Job,
    options: WorkerOptions,
    stop: StopFlag,
    report: DrainReport,
) -> None:
    reclaimed = " (taken over from a stale worker)" if job.reclaimed else ""
    log.info(f"[{options.worker}] {job.kind} {job.label}, attempt {job.attempts}{reclaimed}")
    try:
        run_job(database, job, options, stop)
    except RanksLost:
        raise
    except RunFailed as exc:
        log.error(str(exc))
        report.failed.append(job.label)
    else:
        report.done.append(job.label)


def _pending(
    database: store.Database, experiment: str | None, run_ids: Collection[int] | None
) -> bool:
    if run_ids is not None:
        jobs = [store.get_job(database, run_id) for run_id in run_ids]
        return any(job is not None and job.status in ("queued", "running") for job in jobs)
    counts = store.status_counts(database, experiment)
    return counts.get("queued", 0) + counts.get("running", 0) > 0


def run_queue(
    database: store.Database,
    *,
    experiment: str | None = None,
    run_ids: Collection[int] | None = None,
    max_jobs: int | None = None,
    wait: bool = False,
    runs_dir: Path | None = None,
    lease_s: float = store.DEFAULT_LEASE_S,
    crf_workers: int | None = None,
    ranks: Ranks | None = None,
) -> DrainReport:
    """`rmi worker` in this process: run claimable jobs (of `experiment`, or of `run_ids`)
    until none is left, or `max_jobs` were run; `wait` as in `drain`. With `ranks` (under
    torchrun) this process is rank 0 and trains every job with the other ranks."""
    options = worker_options(
        database, runs_dir, lease_s=lease_s, crf_workers=crf_workers, ranks=ranks
    )
    return drain(
        database, options, experiment=experiment, run_ids=run_ids, max_jobs=max_jobs, wait=wait
    )


def worker_options(
    database: store.Database,
    runs_dir: Path | None = None,
    *,
    lease_s: float = store.DEFAULT_LEASE_S,
    crf_workers: int | None = None,
    ranks: Ranks | None = None,
    progress: bool | None = None,
) -> WorkerOptions:
    """This process's worker settings: run folders under `runs_dir` (default: see
    `rmi_cli.run_folder.runs_root`), progress bars when stderr is a terminal unless told."""
    return WorkerOptions(
        worker=worker_name(),
        runs_root=runs_root(runs_dir, database.path),
        lease_s=lease_s,
        progress=_terminal() if progress is None else progress,
        crf_workers=crf_workers,
        ranks=ranks,
    )


def _terminal() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
