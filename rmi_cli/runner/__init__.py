"""The runner: queue experiments, run jobs, look runs up and estimate costs, without a CLI.

It is the one place where the torch side (engine, CRF) meets the database; the `rmi` commands
are thin shells over it (parse, one call here, print), and a notebook can call it too:

    import logging
    from rmi_cli import runner

    logging.basicConfig(format="%(message)s")
    logging.getLogger("rmi_cli").setLevel(logging.INFO)  # the runner's progress lines
    plan = runner.plan_experiment(runner.experiments_manifest(), "quickstart",
                                  ["train.iterations=20"])
    with runner.open_database("demo.db") as db:
        runner.queue_experiment(db, plan)
        runner.run_queue(db, experiment="quickstart").check()
        methods, per_class = runner.tables(db, "quickstart")
    print(methods.frame[["label", "miou", "n"]])

In a script, call it under `if __name__ == "__main__":` (the CRF's process pool imports it).
Messages go to the `logging` logger "rmi_cli" (INFO: progress, ERROR: a failed job); nothing
here prints. Errors are the project's (`rmi_cli.errors`): `UserError` for bad input,
`RunFailed` when a job failed (its error is stored), `Interrupted` after SIGINT/SIGTERM.
"""

from rmi_cli.db import (
    DEFAULT_LEASE_S,
    Database,
    Enqueued,
    EnqueueReport,
    open_database,
)
from rmi_cli.manifest.starter import write_starter as init_manifest
from rmi_cli.resources import experiments_manifest
from rmi_cli.runner.estimate import PlanEstimate, estimate_plan
from rmi_cli.runner.experiments import (
    AblateOutcome,
    DemoOutcome,
    ablate,
    demo,
    dry_run,
    queue_experiment,
)
from rmi_cli.runner.figures import draw_ablation, draw_curves, draw_qualitative
from rmi_cli.runner.foreground import (
    CRFOutcome,
    EvaluationOutcome,
    TrainOutcome,
    crf,
    evaluate,
    train,
)
from rmi_cli.runner.jobs import WorkerOptions
from rmi_cli.runner.lookup import find_run, plan_experiment, single_run_plan
from rmi_cli.runner.plan_settings import PlanSetting, SettingValue
from rmi_cli.runner.preflight import check_datasets, check_weights, weights_warnings
from rmi_cli.runner.ranks import (
    check_divides,
    data_parallel,
    follow,
    parse_gpus,
    relaunch,
    worker_args,
)
from rmi_cli.runner.report import write_report
from rmi_cli.runner.slurm import SubmitOutcome, submit_workers
from rmi_cli.runner.status import QueueStatus, queue_status, run_detail
from rmi_cli.runner.submit import describe_enqueued
from rmi_cli.runner.tables import tables
from rmi_cli.runner.transfer import export_results, merge_files
from rmi_cli.runner.worker import DrainReport, run_queue, worker_options

__all__ = [
    "DEFAULT_LEASE_S",
    "AblateOutcome",
    "CRFOutcome",
    "Database",
    "DemoOutcome",
    "DrainReport",
    "EnqueueReport",
    "Enqueued",
    "EvaluationOutcome",
    "PlanEstimate",
    "PlanSetting",
    "QueueStatus",
    "SettingValue",
    "SubmitOutcome",
    "TrainOutcome",
    "WorkerOptions",
    "ablate",
    "check_datasets",
    "check_divides",
    "check_weights",
    "crf",
    "data_parallel",
    "demo",
    "describe_enqueued",
    "draw_ablation",
    "draw_curves",
    "draw_qualitative",
    "dry_run",
    "estimate_plan",
    "evaluate",
    "experiments_manifest",
    "export_results",
    "find_run",
    "follow",
    "init_manifest",
    "merge_files",
    "open_database",
    "parse_gpus",
    "plan_experiment",
    "queue_experiment",
    "queue_status",
    "relaunch",
    "run_detail",
    "run_queue",
    "single_run_plan",
    "submit_workers",
    "tables",
    "train",
    "weights_warnings",
    "worker_args",
    "worker_options",
    "write_report",
]
