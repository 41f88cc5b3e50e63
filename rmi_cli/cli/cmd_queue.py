"""`rmi ablate`, `rmi worker`, `rmi status`: queueing experiments and draining the queue."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from rmi_cli import db as store
from rmi_cli.cli import lookup, run_detail, views
from rmi_cli.cli.app import app
from rmi_cli.cli.console import info
from rmi_cli.cli.drain import DrainReport, drain, exit_for, worker_options
from rmi_cli.cli.options import (
    DbOption,
    ExperimentOption,
    ManifestArgument,
    RunsDirOption,
    SetOption,
    open_db,
    runs_dir,
)
from rmi_cli.cli.preflight import check_datasets
from rmi_cli.cli.queueing import enqueue_plan, with_stored_counts
from rmi_cli.cli.ranks import data_parallel, follow, relaunch
from rmi_cli.config import DataConfig
from rmi_cli.db import DEFAULT_LEASE_S, Database
from rmi_cli.manifest import load_manifest


@app.command()
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
    plan = load_manifest(manifest).plan(experiment, overrides or [])
    if dry_run:
        # Nothing is written: a database that does not exist yet is not created for it.
        _, path = store.resolve_target(db)
        database = open_db("sqlite://" if path is not None and not path.exists() else db)
        views.print_plan(database, with_stored_counts(database, plan))
        return
    devices = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else []
    count = len(devices) or workers
    if count:  # the runs start here: this machine must be able to read their data
        needs = [(r.config.data, s) for r in plan.runs for s in _splits(r.config.data)]
        check_datasets(needs + [(step.target.config.data, step.split) for step in plan.crf_steps])
    database = open_db(db)
    report = enqueue_plan(database, plan, requeue_failed=requeue_failed)
    views.print_enqueued(report)
    if count == 0:
        if store.status_counts(database, experiment).get("queued"):
            info(f"start workers with: rmi worker --db {database.url} -e {experiment}")
        return
    if count == 1 and not devices:
        result = drain(database, worker_options(database, runs), experiment=experiment, wait=True)
    else:
        command = _worker_command(database, db, experiment, runs)
        result = _spawn_workers(command, devices or [None] * count)
    views.print_experiment_status(database, experiment)
    exit_for(result)


def _splits(data: DataConfig) -> tuple[str, str]:
    return data.train_split, data.eval_split


@app.command()
def worker(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Only this one."),
    max_jobs: int | None = typer.Option(None, min=1, help="Stop after this many jobs."),
    wait: bool = typer.Option(False, help="Keep polling while jobs are queued or running."),
    lease: float = typer.Option(DEFAULT_LEASE_S, min=1.0, help="Lease seconds."),
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
    with data_parallel() as ranks:
        if ranks is not None and not ranks.is_lead:
            follow(ranks)
            return
        database = open_db(db, create=False)
        if gpus_per_job > 1 and ranks is None:
            args = ["worker", "--lease", str(lease), "--runs-dir", str(runs_dir(database, runs))]
            args += ["-e", experiment] if experiment else []
            args += ["--max-jobs", str(max_jobs)] if max_jobs else []
            args += ["--wait"] if wait else []
            args += ["--crf-workers", str(crf_workers)] if crf_workers else []
            relaunch(gpus_per_job, args + (["--db", db] if db else []), gpus=None)
            return
        options = worker_options(
            database, runs, lease_s=lease, crf_workers=crf_workers, ranks=ranks
        )
        result = drain(database, options, experiment=experiment, max_jobs=max_jobs, wait=wait)
        info(f"[{options.worker}] done: {len(result.done)}, failed: {len(result.failed)}")
        exit_for(result)


@app.command()
def status(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Only this one."),
    run: str | None = typer.Option(None, "--run", help="One run (name or hash): full detail."),
    fmt: str = typer.Option("rich", "--format", "-f", help="Output format: rich, csv or json."),
    db: str | None = DbOption,
) -> None:
    """Show the queue: runs per status, stale jobs (lease expired), attempts and errors.

    Example: rmi status -e camvid-table4
    """
    database = open_db(db, create=False, read_only=True)
    if run is not None:
        row = lookup.find_run(database, run, experiment)
        run_detail.print_run(run_detail.run_detail(database, row), fmt)
        return
    views.print_status(database, experiment, fmt)


def _worker_command(
    database: Database, db: str | None, experiment: str, runs: Path | None
) -> list[str]:
    command = [sys.executable, "-m", "rmi_cli", "worker", "--wait", "-e", experiment]
    command += ["--runs-dir", str(runs_dir(database, runs))]
    # The user's own --db text (a URL keeps its password); without it the workers inherit
    # $RMI_DB or ./rmi.db from this process, which resolve the same way.
    return command + (["--db", db] if db else [])


def _spawn_workers(command: list[str], devices: list[str | None]) -> DrainReport:
    """Start one `rmi worker` process per slot (pinned to a GPU when given); wait for all."""
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
