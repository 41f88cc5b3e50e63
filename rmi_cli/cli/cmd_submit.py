"""`rmi submit`: queue an experiment and put K `rmi worker` jobs on a Slurm cluster."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import runner
from rmi_cli.cli.console import out_console
from rmi_cli.cli.options import (
    DbOption,
    ExperimentOption,
    ManifestArgument,
    RunsDirOption,
    SetOption,
)
from rmi_cli.errors import UserError
from rmi_cli.runner.slurm import SlurmRequest


def register(app: typer.Typer) -> None:
    app.command()(submit)


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
        help="Try it here: submitit's local executor (no Slurm, no GPUs), and wait for the jobs.",
    ),
    logs: Path = typer.Option(Path("slurm"), "--logs", help="submitit's folder: scripts, logs."),
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
    plan = runner.plan_experiment(manifest, experiment, overrides or [])
    request = SlurmRequest(jobs, None if local else partition, gpus_per_job, time_limit, logs)
    outcome = runner.submit_workers(db, plan, request, runs_dir=runs)
    for job_id in outcome.job_ids:
        out_console().print(job_id, markup=False)
    if local:
        outcome.wait()
