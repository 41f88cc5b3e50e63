"""The result database: SQLAlchemy 2 models, Alembic migrations run from code, the job queue,
result storage and the rows reports read. Imports no torch; nothing happens at import time.

    from rmi_cli.db import open_database, claim, store_evaluation, evaluation_rows

    with open_database("rmi.db") as db:
        job = claim(db, worker="host:1234")
"""

from rmi_cli.db.connect import ENV_VAR, open_database, resolve_target
from rmi_cli.db.database import Database
from rmi_cli.db.evaluation_rows import evaluation_rows
from rmi_cli.db.figure_rows import experiment_about, metric_points, run_configs
from rmi_cli.db.leases import (
    DEFAULT_LEASE_S,
    Enqueued,
    EnqueueReport,
    ExperimentInfo,
    Job,
    JobSpec,
    claim,
    complete,
    enqueue,
    enqueue_experiment,
    expire_lease,
    fail,
    get_job,
    heartbeat,
    release,
    running_jobs,
    stale_jobs,
    status_counts,
)
from rmi_cli.db.migrate import (
    VERSION_TABLE,
    UpgradeReport,
    current_revision,
    head_revision,
    revisions,
    schema_diff,
    upgrade,
)
from rmi_cli.db.results import (
    crf_postprocess,
    store_crf,
    store_evaluation,
    store_metrics,
    store_train_result,
)
from rmi_cli.db.rows import (
    experiment_names,
    experiment_tables,
    metrics_rows,
    run_rows,
    throughput_rows,
)
from rmi_cli.db.schema import JobKind, JobStatus

__all__ = [
    "DEFAULT_LEASE_S",
    "ENV_VAR",
    "VERSION_TABLE",
    "Database",
    "EnqueueReport",
    "Enqueued",
    "ExperimentInfo",
    "Job",
    "JobKind",
    "JobSpec",
    "JobStatus",
    "UpgradeReport",
    "claim",
    "complete",
    "crf_postprocess",
    "current_revision",
    "enqueue",
    "enqueue_experiment",
    "evaluation_rows",
    "experiment_about",
    "experiment_names",
    "experiment_tables",
    "expire_lease",
    "fail",
    "get_job",
    "head_revision",
    "heartbeat",
    "metric_points",
    "metrics_rows",
    "open_database",
    "release",
    "resolve_target",
    "revisions",
    "run_configs",
    "run_rows",
    "running_jobs",
    "schema_diff",
    "stale_jobs",
    "status_counts",
    "store_crf",
    "store_evaluation",
    "store_metrics",
    "store_train_result",
    "throughput_rows",
    "upgrade",
]
