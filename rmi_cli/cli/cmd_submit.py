"""`rmi submit`: queue an experiment and put K ordinary `rmi worker` processes on a Slurm cluster
(through submitit), all sharing one database server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from rmi_cli import db as store
from rmi_cli.cli import views
from rmi_cli.cli.app import app
from rmi_cli.cli.console import info, out_console
from rmi_cli.cli.options import (
    DbOption,
    ExperimentOption,
    ManifestArgument,
    RunsDirOption,
    SetOption,
    open_db,
    runs_dir,
)
from rmi_cli.cli.queueing import enqueue_plan
from rmi_cli.cli.ranks import check_divides
from rmi_cli.errors import DependencyMissing, RunFailed, UserError
from rmi_cli.launch import Submission, parse_time
from rmi_cli.manifest import load_manifest


@app.command()
def submit(
    manifest: Path = ManifestArgument,
    experiment: str = ExperimentOption,
    overrides: list[str] | None = SetOption,
    partition: str | None = typer.Option(None, "--slurm-partition", help="Slurm partition."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Slurm jobs: one `rmi worker` each."),
    gpus_per_job: int = typer.Option(1, "--gpus-per-job", min=1, help="GPUs per job (torchrun)."),
    time_limit: str = typer.Option("24:00:00", "--time", help="Time limit per job (Slurm format)."),
    local: bool = typer.Option(
        False,
        "--local",
        help="Run the jobs here with submitit's local executor (no Slurm), and wait.",
    ),
    logs: Path | None = typer.Option(None, "--logs", help="submitit folder (default: slurm/)."),
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Queue an experiment (idempotent, as `rmi ablate --workers 0`) and submit K Slurm jobs, each
    running `rmi worker --db URL -e E --wait` (with --gpus-per-job N, N GPUs per job trained
    together); prints the job ids. The database must be a server every node reaches, and
    --runs-dir a folder they share. `rmi status` shows which job holds which run.

    Example: rmi submit experiments.yaml -e voc-table3a --slurm-partition gpu --jobs 8
             --gpus-per-job 4 --time 2-00:00:00 --db postgresql://host/rmi --runs-dir /shared/runs
    """
    if partition is None and not local:
        raise UserError("rmi submit: give --slurm-partition P (or --local to run the jobs here)")
    minutes = _minutes(time_limit)
    target = _server_url(db)
    plan = load_manifest(manifest).plan(experiment, overrides or [])
    for run in plan.runs:
        check_divides(run.config.train.batch_size, gpus_per_job, f"run {run.name}")
    database = open_db(target)
    views.print_enqueued(enqueue_plan(database, plan))
    folder = runs_dir(database, runs)
    argv = [sys.executable, "-m", "rmi_cli", "worker", "--db", str(target), "-e", experiment]
    argv += ["--wait", "--runs-dir", str(folder)]
    argv += ["--gpus-per-job", str(gpus_per_job)] if gpus_per_job > 1 else []
    submission = Submission(
        worker_argv=tuple(argv),
        jobs=jobs,
        folder=str((logs or Path("slurm")).resolve()),
        name=f"rmi-{experiment}",
        minutes=minutes,
        gpus_per_job=gpus_per_job,
        partition=None if local else partition,
    )
    _submit_and_report(submission, local)


def _minutes(time_limit: str) -> int:
    try:
        return parse_time(time_limit)
    except ValueError:
        raise UserError(
            f"--time: expected a Slurm time limit such as 90, 4:00:00 or 2-00:00:00; "
            f"found {time_limit!r}"
        ) from None


def _server_url(db: str | None) -> str:
    """The database the jobs will use: a server; an SQLite file is refused (see below)."""
    target = db or os.environ.get(store.ENV_VAR) or "rmi.db"
    _, path = store.resolve_target(target)
    if path is not None:
        # SQLite's locks do not hold across machines (network file systems break them).
        raise UserError(
            f"rmi submit: --db is the SQLite file {path}; jobs on other nodes need a database "
            f"server they all reach: --db postgresql://user@host/rmi"
        )
    return target


def _submit_and_report(submission: Submission, local: bool) -> None:
    try:
        submitted = submission.submit()
    except ImportError:
        raise DependencyMissing(
            "rmi submit needs submitit: pip install 'rmi-cli[slurm]' (or pip install submitit)"
        ) from None
    for job in submitted:
        out_console().print(job.job_id, markup=False)
    info(f"{len(submitted)} job(s) submitted; logs in {submission.folder}; watch: rmi status")
    if not local:
        return
    for job in submitted:
        job.wait()
    failed = [str(job.job_id) for job in submitted if job.exception() is not None]
    if failed:
        raise RunFailed(
            f"local job(s) {', '.join(failed)} failed; see their logs in {submission.folder}"
        )
