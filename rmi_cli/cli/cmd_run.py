"""`rmi train`, `rmi eval`, `rmi crf`: one run in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rmi_cli.cli import lookup, views
from rmi_cli.cli.app import app
from rmi_cli.cli.console import info
from rmi_cli.cli.drain import drain, exit_for, worker_options
from rmi_cli.cli.options import DbOption, RunsDirOption, SetOption, open_db, parse_ints
from rmi_cli.cli.preflight import check_datasets
from rmi_cli.cli.queueing import enqueue_plan
from rmi_cli.cli.ranks import check_divides, data_parallel, follow, parse_gpus, relaunch
from rmi_cli.config import CRFConfig
from rmi_cli.db import store_evaluation

if TYPE_CHECKING:
    from rmi_cli.engine.distributed import Ranks
    from rmi_cli.manifest import ExperimentPlan


@app.command()
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
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Train and evaluate one run in the foreground, storing everything in the database.
    A run that is already done is not trained again; an interrupted one resumes. Under
    `torchrun --nproc-per-node N -m rmi_cli train ...` (or with --gpus) the run trains on N
    data-parallel processes; train.batch_size stays the global batch.

    Examples: rmi train experiments.yaml -e quickstart --run rmi
              rmi train --set data.name=synthetic --set train.iterations=50 --set loss.name=rmi
              rmi train experiments.yaml -e voc-table1 --run rmi-deeplabv3 --gpus 0,1,2,3
    """
    with data_parallel() as ranks:
        if ranks is not None and not ranks.is_lead:
            follow(ranks)
            return
        plan = lookup.single_run_plan(manifest, experiment, run, overrides or [])
        if gpus is not None and ranks is None:
            devices = parse_gpus(gpus)
            check_divides(plan.runs[0].config.train.batch_size, len(devices), "--gpus")
            args = _train_args(manifest, experiment, run, overrides, db, runs)
            relaunch(len(devices), args, ",".join(devices))
            return
        _train_here(plan, db, runs, ranks)


def _train_args(
    manifest: Path | None,
    experiment: str | None,
    run: str | None,
    overrides: list[str] | None,
    db: str | None,
    runs: Path | None,
) -> list[str]:
    """This `rmi train` command again, without --gpus (for the processes torchrun starts)."""
    args = ["train", *([str(manifest)] if manifest else [])]
    args += ["-e", experiment] if experiment else []
    args += ["-r", run] if run else []  # "--run": torchrun would take it for its --run-path
    for override in overrides or []:
        args += ["--set", override]
    args += ["--db", db] if db else []
    return args + (["--runs-dir", str(runs)] if runs else [])


def _train_here(
    plan: ExperimentPlan, db: str | None, runs: Path | None, ranks: Ranks | None
) -> None:
    data = plan.runs[0].config.data
    check_datasets([(data, data.train_split), (data, data.eval_split)])
    database = open_db(db)
    report = enqueue_plan(database, plan)
    (name, queued), *_ = report.jobs
    if report.repointed:
        info(
            f"{plan.name}/{name}: configuration changed; the experiment now uses this run "
            f"(the old run stays in the database)"
        )
    if queued.status == "done":
        info(f"{plan.name}/{name} is already done (config {queued.config_hash}); see rmi table")
        return
    options = worker_options(database, runs, ranks=ranks)
    exit_for(drain(database, options, run_ids=[queued.run_id]))


@app.command("eval")
def evaluate(
    run: str | None = typer.Argument(None, help="A run: name, experiment/name or hash."),
    checkpoint: Path | None = typer.Option(None, help="Evaluate this checkpoint file instead."),
    split: str | None = typer.Option(None, help="Split (default: the run's eval split)."),
    max_images: int | None = typer.Option(None, min=1, help="Only the first N images."),
    save_probs: bool = typer.Option(False, help="Keep fp16 probabilities for `rmi crf`."),
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Evaluate a trained run (or a checkpoint) on a split: per-class IoU, mIoU, inference time
    and memory under the stated protocol; stored in the database when the run is known.

    Example: rmi eval quickstart/rmi --split test
    """
    database = open_db(db)
    target = lookup.evaluation_target(database, runs, run, checkpoint)
    # torch loads in seconds: only once the arguments are known to be good.
    from rmi_cli.engine import evaluate_run

    result = evaluate_run(
        target.config,
        checkpoint=target.checkpoint,
        split=split,
        workdir=target.workdir,
        save_probs=save_probs,
        max_images=max_images,
    )
    views.print_scores(result, target.label)
    if max_images is not None:
        # A subset's scores must not replace the run's evaluation of the whole split.
        info(f"not stored: --max-images {max_images} evaluates part of the split")
    elif target.run_id is not None:
        store_evaluation(database, target.run_id, result)
    else:
        info(f"not stored: {target.not_stored}")


@app.command()
def crf(
    run: str = typer.Option(..., "--run", "-r", help="A CE run: name, experiment/name or hash."),
    iters: str = typer.Option("1,5,10", help="Mean-field iteration counts, e.g. 1,5,10."),
    workers: int | None = typer.Option(None, min=1, help="Processes (default: all cores)."),
    split: str | None = typer.Option(None, help="Split (default: the run's eval split)."),
    db: str | None = DbOption,
    runs: Path | None = RunsDirOption,
) -> None:
    """Dense-CRF post-processing of a run's saved probabilities (computed once if missing) with
    the paper's settings; stores mIoU, per-class IoU and the CRF time per image for every
    iteration count. Re-running is a no-op; Ctrl-C keeps the images already done.

    Example: rmi crf --run camvid-table4/ce-deeplabv3-s0 --iters 1,5,10 --workers 16
    """
    database = open_db(db, create=False)
    params = CRFConfig(iters=parse_ints(iters, "--iters"))
    job = lookup.queue_crf(database, run, params, split)
    if job.status == "done":
        info(f"CRF {', '.join(map(str, params.iters))} on {run} is already stored; see rmi table")
        return
    options = worker_options(database, runs, crf_workers=workers)
    exit_for(drain(database, options, run_ids=[job.run_id]))
