"""`rmi train`, `rmi eval`, `rmi crf`: one run in the foreground."""

from __future__ import annotations

from pathlib import Path

import typer

from rmi_cli import runner
from rmi_cli.cli import views
from rmi_cli.cli.console import info
from rmi_cli.cli.options import (
    DbOption,
    RunsDirOption,
    SetOption,
    WaitOption,
    open_db,
    parse_ints,
)


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("eval")(evaluate)
    app.command()(crf)


def train(
    manifest: Path | None = typer.Argument(None, help="Experiments manifest (YAML)."),
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Experiment name."),
    run: str | None = typer.Option(
        None, "--run", "-r", help="Run name (rmi ablate MANIFEST -e E --dry-run lists them)."
    ),
    overrides: list[str] | None = SetOption,
    gpus: str | None = typer.Option(
        None, "--gpus", help="Data-parallel on these GPUs (starts torchrun): --gpus 0,1,2,3."
    ),
    wait: bool = WaitOption,
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Train and evaluate one run in the foreground, storing everything in the database.
    A run that is already done is not trained again; an interrupted one resumes. Under
    `torchrun --nproc-per-node N -m rmi_cli train ...` (or with --gpus) the run trains on N
    data-parallel processes; train.batch_size stays the global batch.

    Examples: rmi train experiments.yaml -e quickstart --run rmi
              rmi train --set data.name=synthetic --set train.iterations=50 --set loss.name=rmi
              rmi train experiments.yaml -e voc-table1 -r rmi-deeplabv3 --gpus 0,1,2,3
    """
    with runner.data_parallel() as ranks:
        if ranks is not None and not ranks.is_lead:
            runner.follow(ranks)
            return
        plan = runner.single_run_plan(manifest, experiment, run, overrides or [])
        if gpus is not None and ranks is None:
            devices = runner.parse_gpus(gpus)
            runner.check_divides(plan.runs[0].config.train.batch_size, len(devices), "--gpus")
            args = _train_args(manifest, experiment, run, overrides, db, runs, wait)
            runner.relaunch(len(devices), args, ",".join(devices))
            return
        # The target, not an open database: bad data must not create one (the runner checks).
        outcome = runner.train(db, plan, runs_dir=runs, wait=wait, ranks=ranks)
        if outcome.report is not None:
            outcome.report.check()


def _train_args(
    manifest: Path | None,
    experiment: str | None,
    run: str | None,
    overrides: list[str] | None,
    db: str | None,
    runs: Path | None,
    wait: bool,
) -> list[str]:
    """This `rmi train` command again, without --gpus (for the processes torchrun starts)."""
    args = ["train", *([str(manifest)] if manifest else [])]
    args += ["-e", experiment] if experiment else []
    args += ["-r", run] if run else []  # "--run": torchrun would take it for its --run-path
    for override in overrides or []:
        args += ["--set", override]
    args += ["--db", db] if db else []
    args += ["--wait"] if wait else []
    return args + (["--runs-dir", str(runs)] if runs else [])


def evaluate(
    run: str | None = typer.Argument(None, help="A run: name, experiment/name or hash."),
    checkpoint: Path | None = typer.Option(None, help="Evaluate this checkpoint file instead."),
    split: str | None = typer.Option(None, help="Split (default: the run's eval split)."),
    max_images: int | None = typer.Option(None, min=1, help="Only the first N images."),
    save_probs: bool = typer.Option(False, help="Keep float32 probabilities for `rmi crf`."),
    wait: bool = WaitOption,
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Evaluate a trained run (or a checkpoint) on a split: per-class IoU, mIoU, inference time
    and memory under the stated protocol; stored in the database when the run is known.

    Example: rmi eval quickstart/rmi --split test
    """
    outcome = runner.evaluate(
        open_db(db),
        run=run,
        checkpoint=checkpoint,
        split=split,
        max_images=max_images,
        save_probs=save_probs,
        runs_dir=runs,
        wait=wait,
    )
    views.print_scores(outcome.result, outcome.label)
    if not outcome.stored:
        info(f"not stored: {outcome.not_stored}")


def crf(
    run: str = typer.Option(..., "--run", "-r", help="A CE run: name, experiment/name or hash."),
    iters: str = typer.Option("1,5,10", help="Mean-field iteration counts, e.g. 1,5,10."),
    workers: int | None = typer.Option(None, min=1, help="Processes (default: all cores)."),
    split: str | None = typer.Option(None, help="Split (default: the run's eval split)."),
    wait: bool = WaitOption,
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Dense-CRF post-processing of a run's saved probabilities (computed once if missing) with
    the paper's settings; stores mIoU, per-class IoU and the CRF time per image for every
    iteration count. Re-running is a no-op; Ctrl-C keeps the images already done.

    Example: rmi crf --run camvid-table4/ce-deeplabv3-s0 --iters 1,5,10 --workers 16
    """
    counts = parse_ints(iters, "--iters")
    database = open_db(db, create=False)
    outcome = runner.crf(
        database, run, iters=counts, split=split, workers=workers, runs_dir=runs, wait=wait
    )
    if outcome.report is not None:
        outcome.report.check()
