"""Initial schema: experiments, runs (the job queue), metrics, results, environments.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 20:01:01

Timestamps are stored as naive UTC (`rmi_cli.db.schema.UTCDateTime` adds the zone back); the
scripts spell plain SQLAlchemy types so that they never depend on the models of a later version.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint_hash", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("python", sa.String(length=64), nullable=False),
        sa.Column("torch", sa.String(length=64), nullable=False),
        sa.Column("torchvision", sa.String(length=64), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=False),
        sa.Column("cuda", sa.String(length=64), nullable=True),
        sa.Column("driver", sa.String(length=64), nullable=True),
        sa.Column("cudnn", sa.String(length=64), nullable=True),
        sa.Column("cpu", sa.Text(), nullable=True),
        sa.Column("num_threads", sa.Integer(), nullable=True),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("rmi_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_environments")),
        sa.UniqueConstraint("fingerprint_hash", name=op.f("uq_environments_fingerprint_hash")),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("manifest_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_experiments_name")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("config_json", sa.JSON(), nullable=False),
        sa.Column("depends_on_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("checkpoint_path", sa.Text(), nullable=True),
        sa.Column("workdir", sa.Text(), nullable=True),
        sa.Column("environment_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('train', 'crf')", name=op.f("ck_runs_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_runs_status")
        ),
        sa.ForeignKeyConstraint(
            ["depends_on_id"],
            ["runs.id"],
            name=op.f("fk_runs_depends_on_id_runs"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_runs_environment_id_environments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("config_hash", name=op.f("uq_runs_config_hash")),
    )
    op.create_index("ix_runs_depends_on_id", "runs", ["depends_on_id"])
    op.create_index("ix_runs_status_priority_id", "runs", ["status", "priority", "id"])
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("split", sa.String(length=64), nullable=False),
        sa.Column("postprocess", sa.String(length=32), nullable=False),
        sa.Column("miou", sa.Float(), nullable=False),
        sa.Column("pixel_accuracy", sa.Float(), nullable=False),
        sa.Column("mean_accuracy", sa.Float(), nullable=False),
        sa.Column("num_images", sa.Integer(), nullable=False),
        sa.Column("excluded_classes_json", sa.JSON(), nullable=False),
        sa.Column("confusion_json", sa.JSON(), nullable=False),
        sa.Column("inference_median_ms", sa.Float(), nullable=True),
        sa.Column("inference_p90_ms", sa.Float(), nullable=True),
        sa.Column("inference_mean_ms", sa.Float(), nullable=True),
        sa.Column("timing_protocol_json", sa.JSON(), nullable=True),
        sa.Column("crf_median_ms", sa.Float(), nullable=True),
        sa.Column("crf_p90_ms", sa.Float(), nullable=True),
        sa.Column("crf_workers", sa.Integer(), nullable=True),
        sa.Column("crf_params_json", sa.JSON(), nullable=True),
        sa.Column("total_median_ms", sa.Float(), nullable=True),
        sa.Column("peak_eval_memory_mb", sa.Float(), nullable=True),
        sa.Column("probs_dir", sa.Text(), nullable=True),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "postprocess = 'none' OR postprocess LIKE 'crf-%'",
            name=op.f("ck_evaluations_postprocess"),
        ),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_evaluations_environment_id_environments"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_evaluations_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        sa.UniqueConstraint(
            "run_id", "split", "postprocess", name=op.f("uq_evaluations_run_id_split_postprocess")
        ),
    )
    op.create_table(
        "experiment_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("group_label", sa.String(length=100), nullable=False),
        sa.Column("params_json", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_runs_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_experiment_runs_run_id_runs"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_runs")),
        sa.UniqueConstraint(
            "experiment_id", "name", name=op.f("uq_experiment_runs_experiment_id_name")
        ),
    )
    op.create_index("ix_experiment_runs_run_id", "experiment_runs", ["run_id"])
    op.create_table(
        "train_metrics",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=False),
        sa.Column("lr", sa.Float(), nullable=False),
        sa.Column("images_per_s", sa.Float(), nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("rmi_fallbacks", sa.Integer(), nullable=False),
        sa.Column("extra_json", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_train_metrics_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "iteration", name=op.f("pk_train_metrics")),
    )
    op.create_table(
        "train_results",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("checkpoint_path", sa.Text(), nullable=False),
        sa.Column("iterations", sa.Integer(), nullable=False),
        sa.Column("final_loss", sa.Float(), nullable=False),
        sa.Column("train_time_s", sa.Float(), nullable=False),
        sa.Column("images_per_s", sa.Float(), nullable=False),
        sa.Column("peak_train_memory_mb", sa.Float(), nullable=True),
        sa.Column("rmi_fallbacks", sa.Integer(), nullable=False),
        sa.Column("resumed_from", sa.Integer(), nullable=True),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_train_results_environment_id_environments"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_train_results_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_train_results")),
    )
    op.create_table(
        "class_iou",
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("class_index", sa.Integer(), nullable=False),
        sa.Column("class_name", sa.String(length=200), nullable=False),
        sa.Column("iou", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_class_iou_evaluation_id_evaluations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("evaluation_id", "class_index", name=op.f("pk_class_iou")),
    )


def downgrade() -> None:
    for table in (
        "class_iou",
        "train_results",
        "train_metrics",
        "experiment_runs",
        "evaluations",
        "runs",
        "experiments",
        "environments",
    ):
        op.drop_table(table)
