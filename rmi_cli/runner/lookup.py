"""Finding what a command refers to: one run of a manifest, a run in the database, a checkpoint."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmi_cli import db as store
from rmi_cli.config import CRFConfig, RunConfig
from rmi_cli.errors import CheckpointError, ConfigError, UserError
from rmi_cli.manifest import ExperimentPlan, PlannedCRF, load_manifest, manifest_from_text
from rmi_cli.run_folder import LAST_CHECKPOINT, RunFolder, runs_root
from rmi_cli.runner.failures import error_summary
from rmi_cli.runner.preflight import check_datasets, scratch_twins
from rmi_cli.runner.submit import enqueue_plan
from rmi_cli.stored import RunRecord

ADHOC = "adhoc"  # the experiment of runs given by --set flags alone
log = logging.getLogger(__name__)


def plan_experiment(
    manifest: Path, experiment: str, overrides: Sequence[str] = ()
) -> ExperimentPlan:
    """Every run and CRF step of `experiment` in the manifest file, `--set`-style `overrides`
    (such as "train.iterations=20") applied to each run, with the experiment's from-scratch
    twins named (`scratch_twins`)."""
    loaded = load_manifest(manifest)
    plan = loaded.plan(experiment, overrides)
    twins = scratch_twins(loaded, experiment, overrides)
    return dataclasses.replace(plan, scratch_twins=tuple(twins))


def single_run_plan(
    manifest: Path | None, experiment: str | None, run: str | None, overrides: list[str]
) -> ExperimentPlan:
    """The plan of one run: from a manifest (`-e E --run R`) or from `--set` flags alone."""
    if manifest is None:
        if experiment or run:
            raise UserError("--experiment and --run need a MANIFEST argument before them")
        if not overrides:
            raise UserError(
                "rmi train: give MANIFEST --experiment E --run R, or the run's settings with "
                "--set (at least --set train.iterations=N); see rmi train --help"
            )
        plan = manifest_from_text(f"experiments: {{{ADHOC}: {{}}}}", "--set").plan(ADHOC, overrides)
        only = dataclasses.replace(plan.runs[0], name=f"run-{plan.runs[0].config_hash[:8]}")
        return dataclasses.replace(plan, runs=(only,), crf_steps=())
    if experiment is None:
        raise UserError(f"{manifest}: name the experiment with --experiment (and the --run)")
    plan = load_manifest(manifest).plan(experiment, overrides)
    if run is None:
        if len(plan.runs) != 1:
            names = ", ".join(r.name for r in plan.runs)
            raise UserError(f"experiment {experiment!r} has {len(plan.runs)} runs; pick one "
                            f"with --run ({names}), or queue them all with rmi ablate")  # fmt: skip
        run = plan.runs[0].name
    return dataclasses.replace(plan, runs=(plan.run(run),), crf_steps=())


def find_run(database: store.Database, ref: str, experiment: str | None = None) -> RunRecord:
    """A run by `experiment/name`, a unique `name`, its config hash or a hash prefix
    (>= 6 characters); `experiment` narrows the search when `ref` names none."""
    named, _, name = ref.rpartition("/")
    rows = store.run_rows(database, experiment=named or experiment)
    matches = [r for r in rows if name in (r.name, r.config_hash)]
    if not matches and len(name) >= 6:
        matches = [r for r in rows if r.config_hash.startswith(name)]
    unique = {r.run_id: r for r in matches}
    if len(unique) == 1:
        return next(iter(unique.values()))
    if not unique:
        raise UserError(f"no run {ref!r} in {database.url}; `rmi status` lists the runs")
    options = ", ".join(sorted(f"{r.experiment}/{r.name}" for r in matches))
    raise UserError(f"{ref!r} matches several runs ({options}); give experiment/name")


@dataclass(frozen=True)
class EvaluationTarget:
    """A checkpoint to evaluate, its configuration, and the run it belongs to (if known)."""

    config: RunConfig
    checkpoint: Path
    workdir: Path
    run_id: int | None  # where the result is stored; None: printed only
    label: str
    not_stored: str = "no run in the database has this checkpoint's configuration"


def stored_config(config: Mapping[str, Any], label: str) -> RunConfig:
    """A run's configuration as the database stores it, validated by this version of rmi."""
    try:
        return RunConfig.model_validate(dict(config))
    except ValueError as exc:
        raise ConfigError(
            f"run {label}: its stored configuration does not validate with this version of rmi "
            f"({str(exc).splitlines()[0]}); queue it again from the manifest"
        ) from None


def run_checkpoint(folder: RunFolder, stored: str | None) -> Path:
    """The checkpoint a trained run is read from: its folder's last.pt, else the newest
    iter-<N>.pt (what a run resumes from when last.pt is gone), else the path the database
    stored; the last candidate when none exists (for the caller's message)."""
    from rmi_cli.engine.checkpoint import latest_checkpoint  # torch: the callers need it anyway

    path = latest_checkpoint(folder.path) or folder.last_checkpoint
    if not path.is_file() and stored:
        path = Path(stored)
    return path


def evaluation_target(
    database: store.Database, runs: Path | None, ref: str | None, checkpoint: Path | None
) -> EvaluationTarget:
    """What `rmi eval` evaluates: a run in the database, or a checkpoint file."""
    if (ref is None) == (checkpoint is None):
        raise UserError("rmi eval: give a RUN or --checkpoint FILE (exactly one of them)")
    if checkpoint is not None:
        return _checkpoint_target(database, checkpoint)
    row = find_run(database, str(ref))
    job = store.get_job(database, row.run_id)
    if job is None or job.kind != "train":
        raise UserError(f"run {ref!r} is not a training run")
    folder = RunFolder.of(runs_root(runs, database.path), job.config_hash)
    path = run_checkpoint(folder, job.checkpoint_path)
    if not path.is_file():
        raise CheckpointError(
            f"run {ref!r} has no checkpoint at {path} (status {job.status}); train it first "
            f"(rmi train / rmi worker) or pass --runs-dir where its run folder lives"
        )
    label = f"{row.experiment}/{row.name}"
    config = stored_config(job.config, label)
    return _stored_if_final(EvaluationTarget(config, path, folder.path, job.id, label), job)


def _checkpoint_target(database: store.Database, checkpoint: Path) -> EvaluationTarget:
    if not checkpoint.is_file():
        raise CheckpointError(f"{checkpoint}: no such checkpoint file; check the path")
    folder = RunFolder.of_checkpoint(checkpoint)
    config_file = folder.config_file
    if not config_file.is_file():
        raise CheckpointError(
            f"{checkpoint}: no {config_file.name} in its run folder {folder.path}; evaluate "
            f"checkpoints that rmi wrote (runs/<hash>/checkpoints/*.pt)"
        )
    try:
        config = RunConfig.model_validate(json.loads(config_file.read_text()))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{config_file}: not a valid run configuration ({exc})") from None
    known = [r for r in store.run_rows(database) if r.config_hash == config.canonical_hash()]
    job = store.get_job(database, known[0].run_id) if known else None
    run_id = job.id if job is not None else None
    target = EvaluationTarget(config, checkpoint, folder.path, run_id, str(checkpoint))
    return target if job is None else _stored_if_final(target, job)


def _stored_if_final(target: EvaluationTarget, job: store.Job) -> EvaluationTarget:
    """The target, printed only unless it holds the run's final weights: an intermediate or
    unfinished checkpoint's scores must not replace the run's stored evaluation."""
    final = Path(job.checkpoint_path) if job.checkpoint_path else None
    if final is not None and target.checkpoint.name in (final.name, LAST_CHECKPOINT):
        return target
    state = f"its final checkpoint is {final.name}" if final else "its training has not finished"
    return dataclasses.replace(
        target,
        run_id=None,
        not_stored=f"{target.checkpoint.name} is not the run's result ({state})",
    )


def queue_crf(
    database: store.Database,
    ref: str,
    params: CRFConfig,
    split: str | None,
    *,
    runs_root: Path | None = None,
) -> store.Enqueued:
    """Queue (idempotently) a CRF step over a trained run, as a member of its experiment. The
    run must be done (and, with `runs_root`, its run folder here); a CRF step of it that failed
    before is queued again: naming it is asking for it."""
    row = find_run(database, ref)
    job = store.get_job(database, row.run_id)
    if job is None or job.kind != "train":
        raise UserError(f"run {ref!r} is not a training run; the CRF post-processes one")
    from rmi_cli.manifest import PlannedRun

    config = stored_config(job.config, f"{row.experiment}/{row.name}")
    target = PlannedRun(
        row.experiment or ADHOC, row.name, row.name, row.method or "CE", row.group or "", {},
        config,
    )  # fmt: skip
    split = split or config.data.eval_split
    check_datasets([(config.data, split)])
    _require_trained(job, f"{row.experiment}/{row.name}", runs_root)
    step = PlannedCRF(target.experiment, target, params, split)
    plan = ExperimentPlan("", target.experiment, "", (), (step,), ())
    report = enqueue_plan(database, plan, requeue_failed=True)
    if report.names("requeued"):
        log.info(f"{step.experiment}/{step.name} failed before; running it again")
    return report.jobs[0][1]


def _require_trained(job: store.Job, label: str, root: Path | None) -> None:
    """Queueing a CRF step on a run that is not done queued a job that failed or waited
    without a word (exit 0); a run folder that is not here failed the job later."""
    if job.status == "failed":
        raise UserError(
            f"run {label} failed ({error_summary(job.error)}), so there is no model to "
            f"post-process; fix the cause and train it again (rmi train, or rmi ablate ... "
            f"--requeue-failed), then rmi crf"
        )
    if job.status != "done":
        raise UserError(
            f"run {label} is {job.status}, not trained yet; the CRF post-processes a trained "
            f"model: let a worker finish it (rmi worker, or rmi train), then rmi crf"
        )
    folder = RunFolder.of(root, job.config_hash) if root is not None else None
    if (
        folder is not None
        and not folder.path.is_dir()
        and not (job.checkpoint_path and Path(job.checkpoint_path).is_file())
    ):
        raise UserError(
            f"run {label} was trained elsewhere: its run folder {folder.path} is not here; "
            f"point --runs-dir at the folder that holds {job.config_hash}/ (the CRF reads its "
            f"probabilities or checkpoint)"
        )
