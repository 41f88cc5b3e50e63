"""From a planned experiment to jobs on the queue (idempotent by configuration hash)."""

from __future__ import annotations

import dataclasses

from rmi_cli import db as store
from rmi_cli.config import CRFConfig, RunConfig
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
    plan = with_stored_counts(database, plan)
    about = None
    if plan.manifest:
        tables = [table.model_dump(mode="json", exclude_none=True) for table in plan.tables]
        about = store.ExperimentInfo(plan.description, plan.manifest, tables)
    return store.enqueue_experiment(
        database, plan.name, job_specs(plan), about=about, requeue_failed=requeue_failed
    )


def describe_enqueued(report: store.EnqueueReport) -> list[str]:
    """What was queued and what was left alone, in a line (two when configurations changed)."""
    new, again = report.names("new"), report.names("requeued")
    done = report.names("exists", "done")
    waiting = [n for n in report.names("exists") if n not in done]
    parts = [f"{len(new)} queued", f"{len(again)} re-queued", f"{len(done)} already done"]
    parts.append(f"{len(waiting)} already queued, running or failed")
    lines = [f"{report.experiment}: " + ", ".join(parts)]
    if report.repointed:
        # The new configuration may be queued now or done already (under another experiment,
        # or before a switch back): the counts above say which.
        lines.append(
            f"configuration changed for: {', '.join(report.repointed)} (the experiment now uses "
            f"the runs of the new configuration; the old runs stay in the database)"
        )
    return lines


def with_stored_counts(database: store.Database, plan: ExperimentPlan) -> ExperimentPlan:
    """The plan with each CRF step's iteration counts joined with those its step of the same
    name already has (same run, split and kernel settings): CRF steps grow. Asking for CRF-10
    after CRF-1/5 keeps CRF-1/5 in the tables; queueing CRF-1/5 again after CRF-1/5/10 is
    already done and keeps CRF-10."""
    if not plan.crf_steps or plan.name not in store.experiment_names(database):
        return plan
    stored = {row.name: row for row in store.run_rows(database, experiment=plan.name)}
    steps = []
    for step in plan.crf_steps:
        row = stored.get(step.name)
        job = store.get_job(database, row.run_id) if row else None
        steps.append(_grown(step, job) if job is not None and job.kind == "crf" else step)
    return dataclasses.replace(plan, crf_steps=tuple(steps))


def _grown(step: PlannedCRF, job: store.Job) -> PlannedCRF:
    before = CRFConfig.model_validate(job.config.get("crf", {}))
    same_kernel = before.model_copy(update={"iters": step.crf.iters}) == step.crf
    same_input = (job.config.get("on"), job.config.get("split")) == (
        step.target.config_hash,
        step.split,
    )
    if not (same_kernel and same_input):
        return step
    iters = tuple(sorted({*before.iters, *step.crf.iters}))
    return dataclasses.replace(step, crf=step.crf.model_copy(update={"iters": iters}))


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
