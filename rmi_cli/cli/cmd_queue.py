"""`rmi ablate`, `rmi worker`, `rmi status`: queueing experiments and draining the queue."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import runner
from rmi_cli.cli import run_view, views
from rmi_cli.cli.console import info
from rmi_cli.cli.options import (
    DbOption,
    ExperimentOption,
    ManifestArgument,
    RunsDirOption,
    SetOption,
    open_db,
    open_existing,
)
from rmi_cli.cli.views import StatusFormat


def register(app: typer.Typer) -> None:
    app.command()(ablate)
    app.command()(worker)
    app.command()(status)


def ablate(
    manifest: Path = ManifestArgument,
    experiment: str = ExperimentOption,
    overrides: list[str] | None = SetOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; queue nothing."),
    workers: int = typer.Option(1, "--workers", "-w", min=0, help="Local worker processes."),
    gpus: str | None = typer.Option(None, help="One worker per GPU: --gpus 0,1,2,3."),
    requeue_failed: bool = typer.Option(False, help="Queue failed runs again."),
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Expand an experiment (runs x grid x seeds, CRF steps), queue what is not queued or done
    yet, then run the queue with local workers (--workers 0 only queues: start `rmi worker` on
    other machines against the same --db).

    Example: rmi ablate experiments.yaml -e voc-table3a --dry-run
    """
    plan = runner.plan_experiment(manifest, experiment, overrides or [])
    if dry_run:
        # Nothing is written: a database that does not exist yet is not created for it.
        views.print_plan(runner.dry_run(open_existing(db), plan))
        return
    devices = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else []
    outcome = runner.ablate(
        db, plan, workers=workers, gpus=devices, requeue_failed=requeue_failed, runs_dir=runs
    )
    if outcome.report is None:
        if outcome.counts.get("queued"):
            info(f"start workers with: rmi worker --db {outcome.database_url} -e {experiment}")
        return
    views.print_counts(outcome.counts, experiment)
    outcome.report.check()


def worker(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Only this one."),
    max_jobs: int | None = typer.Option(None, min=1, help="Stop after this many jobs."),
    wait: bool = typer.Option(False, help="Keep polling while jobs are queued or running."),
    lease: float = typer.Option(runner.DEFAULT_LEASE_S, min=1.0, help="Lease seconds."),
    crf_workers: int | None = typer.Option(None, min=1, help="CRF processes (default: cores)."),
    gpus_per_job: int = typer.Option(
        1, "--gpus-per-job", min=1, help="Train each job on N data-parallel GPUs (torchrun)."
    ),
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Claim queued jobs and run them until none is left. Run one per GPU, on as many machines
    as share the database; a worker that dies is replaced by the next one to claim its job
    after the lease expires, which resumes from the last checkpoint. With --gpus-per-job N it
    starts torchrun: N processes train each job together (the visible GPUs, or N CPU processes
    on a machine without CUDA); under `torchrun -m rmi_cli worker` it does the same.

    Example: CUDA_VISIBLE_DEVICES=1 rmi worker --db postgresql://host/rmi -e voc-table3a
             rmi worker --db postgresql://host/rmi --gpus-per-job 4
    """
    with runner.data_parallel() as ranks:
        if ranks is not None and not ranks.is_lead:
            runner.follow(ranks)
            return
        database = open_db(db, create=False)
        if gpus_per_job > 1 and ranks is None:
            args = runner.worker_args(
                database, db, runs, experiment=experiment, max_jobs=max_jobs, wait=wait,
                lease_s=lease, crf_workers=crf_workers,
            )  # fmt: skip
            runner.relaunch(gpus_per_job, args, gpus=None)
            return
        result = runner.run_queue(
            database,
            experiment=experiment,
            max_jobs=max_jobs,
            wait=wait,
            runs_dir=runs,
            lease_s=lease,
            crf_workers=crf_workers,
            ranks=ranks,
        )
        info(f"[{result.worker}] done: {len(result.done)}, failed: {len(result.failed)}")
        result.check()


def status(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Only this one."),
    run: str | None = typer.Option(None, "--run", help="One run (name or hash): full detail."),
    fmt: StatusFormat = typer.Option(
        "rich", "--format", "-f", help="Output format (one run's detail: rich or json)."
    ),
    db: str | None = DbOption,
) -> None:
    """Show the queue: runs per status, stale jobs (lease expired), attempts and errors.

    Example: rmi status -e camvid-table4
    """
    database = open_db(db, create=False, read_only=True)
    if run is not None:
        run_view.print_run(runner.run_detail(database, run, experiment), fmt)
        return
    views.print_status(runner.queue_status(database, experiment), experiment, fmt)
