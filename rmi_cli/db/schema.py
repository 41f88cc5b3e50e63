"""The result database's tables, as SQLAlchemy 2 ORM models (`Base.metadata` feeds Alembic).

One home for the table names and the job vocabulary. Every timestamp is UTC (stored without a
zone, returned aware); IoU and accuracies are fractions in [0, 1]. A run is identified by the
canonical hash of its configuration across all experiments, so the same configuration queued by
two experiments trains once; `experiment_runs` says which experiment calls it what.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints are what lets a later migration drop or alter them, and SQLite's batch mode
# (copy the table, move it back) needs every constraint to have a name it can recreate.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobKind(StrEnum):
    TRAIN = "train"  # train, then evaluate on the configured split
    CRF = "crf"  # dense-CRF post-processing of a train run's saved probabilities


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, stored as naive UTC.

    SQLite has no time zones and PostgreSQL's `timestamp with time zone` would return the
    session's zone; storing naive UTC everywhere keeps comparisons (lease expiry) dialect-neutral.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Environment(Base):
    """Where numbers were measured (`records.Fingerprint`), stored once per distinct fingerprint."""

    __tablename__ = "environments"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hostname: Mapped[str] = mapped_column(String(255))
    platform: Mapped[str] = mapped_column(Text)
    python: Mapped[str] = mapped_column(String(64))
    torch: Mapped[str] = mapped_column(String(64))
    torchvision: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(255))
    cuda: Mapped[str | None] = mapped_column(String(64))
    driver: Mapped[str | None] = mapped_column(String(64))
    cudnn: Mapped[str | None] = mapped_column(String(64))
    cpu: Mapped[str | None] = mapped_column(Text)
    num_threads: Mapped[int | None] = mapped_column(Integer)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    rmi_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    manifest_path: Mapped[str | None] = mapped_column(Text)
    # The manifest's `tables:` entries (kind, split, rows, cols, baseline, title): what
    # `rmi table` renders by default. None: the manifest declared none (the kinds are inferred).
    tables_json: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list[Membership]] = relationship(
        back_populates="experiment", order_by="Membership.position", passive_deletes=True
    )


class Run(Base):
    """A job of the queue and the run it computes (train, or CRF on a train run)."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint("kind IN ('train', 'crf')", name="kind"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        # The claim query filters on status and orders by priority, then age.
        Index("ix_runs_status_priority_id", "status", "priority", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    config_hash: Mapped[str] = mapped_column(String(64), unique=True)
    config_json: Mapped[dict[str, Any]]
    depends_on_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    priority: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)  # claims so far, releases not counted
    max_attempts: Mapped[int] = mapped_column(default=3)
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]  # start of the latest attempt
    finished_at: Mapped[datetime | None]
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    workdir: Mapped[str | None] = mapped_column(Text)
    environment_id: Mapped[int | None] = mapped_column(ForeignKey("environments.id"))

    depends_on: Mapped[Run | None] = relationship(remote_side=[id])
    members: Mapped[list[Membership]] = relationship(back_populates="run")


class Membership(Base):
    """A run as one experiment names it, with the labels and grid point the tables group by."""

    __tablename__ = "experiment_runs"
    __table_args__ = (UniqueConstraint("experiment_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(100), default="")  # "RMI", "CE + CRF"
    group_label: Mapped[str] = mapped_column(String(100), default="")  # "DeepLabv3"
    params_json: Mapped[dict[str, Any]] = mapped_column(default=dict)  # dotted key -> value
    position: Mapped[int] = mapped_column(default=0)

    experiment: Mapped[Experiment] = relationship(back_populates="members")
    run: Mapped[Run] = relationship(back_populates="members")


class MetricPoint(Base):
    """One periodic training report (`records.TrainMetrics`); re-recording replaces it."""

    __tablename__ = "train_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    iteration: Mapped[int] = mapped_column(primary_key=True)
    loss: Mapped[float] = mapped_column(Float)
    lr: Mapped[float] = mapped_column(Float)
    images_per_s: Mapped[float] = mapped_column(Float)
    elapsed_s: Mapped[float] = mapped_column(Float)
    rmi_fallbacks: Mapped[int] = mapped_column(default=0)
    extra_json: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainSummary(Base):
    """What a finished training run reported (`records.TrainResult`), one row per run."""

    __tablename__ = "train_results"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    checkpoint_path: Mapped[str] = mapped_column(Text)
    iterations: Mapped[int]
    final_loss: Mapped[float] = mapped_column(Float)
    train_time_s: Mapped[float] = mapped_column(Float)
    images_per_s: Mapped[float] = mapped_column(Float)
    peak_train_memory_mb: Mapped[float | None] = mapped_column(Float)
    rmi_fallbacks: Mapped[int]
    resumed_from: Mapped[int | None]
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Data-parallel processes (revision 0003); NULL batch_per_rank: trained before it, 1 process.
    world_size: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    batch_per_rank: Mapped[int | None]


class Evaluation(Base):
    """Scores of one run on one split after one post-processing ("none" or "crf-N")."""

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("run_id", "split", "postprocess"),
        CheckConstraint("postprocess = 'none' OR postprocess LIKE 'crf-%'", name="postprocess"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(64))
    postprocess: Mapped[str] = mapped_column(String(32))
    miou: Mapped[float] = mapped_column(Float)
    pixel_accuracy: Mapped[float] = mapped_column(Float)
    mean_accuracy: Mapped[float] = mapped_column(Float)
    num_images: Mapped[int]
    excluded_classes_json: Mapped[list[Any]] = mapped_column(default=list)
    confusion_json: Mapped[list[Any]] = mapped_column(default=list)
    inference_median_ms: Mapped[float | None] = mapped_column(Float)
    inference_p90_ms: Mapped[float | None] = mapped_column(Float)
    inference_mean_ms: Mapped[float | None] = mapped_column(Float)
    timing_protocol_json: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    crf_median_ms: Mapped[float | None] = mapped_column(Float)
    crf_p90_ms: Mapped[float | None] = mapped_column(Float)
    crf_workers: Mapped[int | None]
    crf_params_json: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    total_median_ms: Mapped[float | None] = mapped_column(Float)  # network + CRF per image
    # Boundary IoU (revision 0004); None for evaluations stored before it
    boundary_miou: Mapped[float | None] = mapped_column(Float)
    peak_eval_memory_mb: Mapped[float | None] = mapped_column(Float)
    probs_dir: Mapped[str | None] = mapped_column(Text)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    classes: Mapped[list[ClassIoU]] = relationship(
        order_by="ClassIoU.class_index", cascade="all, delete-orphan", passive_deletes=True
    )
    evidence: Mapped[ImageEvidence | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class ClassIoU(Base):
    __tablename__ = "class_iou"

    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True
    )
    class_index: Mapped[int] = mapped_column(primary_key=True)
    class_name: Mapped[str] = mapped_column(String(200))
    iou: Mapped[float | None] = mapped_column(Float)  # None: zero union, excluded from mIoU
    boundary_iou: Mapped[float | None] = mapped_column(Float)  # None: zero union or not computed


class ImageEvidence(Base):
    """Per-image, per-class counts of one evaluation (`records.ImageCounts`), as one blob.

    One row per evaluation rather than one per image: statistics always read an evaluation's
    images together (a bootstrap resamples all of them), so one row is one insert in the
    evaluation's transaction, one read, and goes with the evaluation (ON DELETE CASCADE); a
    VOC evaluation is one row instead of 1,449. The blob is the same bytes in SQLite (BLOB) and
    PostgreSQL (BYTEA), decodable without rmi: `encoding` says how (`rmi_cli.db.evidence`).
    """

    __tablename__ = "image_counts"

    evaluation_id: Mapped[int] = mapped_column(
        ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True
    )
    num_images: Mapped[int]
    num_classes: Mapped[int]
    names_json: Mapped[list[Any]]  # image names, in the order of the counts
    encoding: Mapped[str] = mapped_column(String(64))
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    boundary_fraction: Mapped[float] = mapped_column(Float)


TABLE_NAMES = tuple(Base.metadata.tables)
