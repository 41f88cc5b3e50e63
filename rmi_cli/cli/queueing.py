"""From a planned experiment to jobs on the queue (idempotent by configuration hash)."""

from __future__ import annotations

from rmi_cli import db as store
from rmi_cli.config import RunConfig
from rmi_cli.manifest import ExperimentPlan, PlannedCRF, PlannedRun

# CRF steps run after everything that trains: their CPU pool would otherwise compete with the
# data loaders of training runs on the same machine.
TRAIN_PRIORITY, CRF_PRIORITY = 10, 0


def job_specs(plan: ExperimentPlan) -> list[store.JobSpec]:
    """The experiment's runs, then its CRF steps (which depend on them)."""
    crf_targets = {step.target.config_hash for step in plan.crf_steps}
    specs = [_train_spec(run, run.config_hash in crf_targets) for run in plan.runs]
    specs += [_crf_spec(step) for step in plan.crf_steps]
    return specs


def enqueue_plan(
    database: store.Database, plan: ExperimentPlan, *, requeue_failed: bool = False
) -> store.EnqueueReport:
    """Record the experiment and queue whatever of it is not queued or done already. A plan
    without a manifest (a CRF step queued by `rmi crf`) leaves what is stored about the
    experiment as it is."""
    about = None
    if plan.manifest:
        tables = [table.model_dump(mode="json", exclude_none=True) for table in plan.tables]
        about = store.ExperimentInfo(plan.description, plan.manifest, tables)
    return store.enqueue_experiment(
        database, plan.name, job_specs(plan), about=about, requeue_failed=requeue_failed
    )


def _train_spec(run: PlannedRun, keep_probs: bool) -> store.JobSpec:
    return store.JobSpec(
        kind="train",
        config=_with_probs(run.config, keep_probs).to_json_dict(),
        config_hash=run.config_hash,
        name=run.name,
        method=run.label,
        group=run.group,
        params=run.params,
        priority=TRAIN_PRIORITY,
    )


def _with_probs(config: RunConfig, keep: bool) -> RunConfig:
    # eval.save_probs is operational (outside the hash): a CRF step needs the probabilities,
    # so the run that feeds it keeps them instead of evaluating twice.
    if not keep or config.eval.save_probs:
        return config
    return config.model_copy(update={"eval": config.eval.model_copy(update={"save_probs": True})})


def _crf_spec(step: PlannedCRF) -> store.JobSpec:
    return store.JobSpec(
        kind="crf",
        config=step.job_config(),
        config_hash=step.config_hash,
        name=step.name,
        method=step.target.label,
        group=step.target.group,
        params=step.target.params,
        depends_on=step.target.config_hash,
        priority=CRF_PRIORITY,
    )
