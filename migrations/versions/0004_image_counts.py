"""Per-image evidence and boundary IoU: every evaluation's per-image, per-class counts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00

A new table `image_counts` (one compressed blob of counts per evaluation) and two nullable
columns, `evaluations.boundary_miou` and `class_iou.boundary_iou`. Evaluations stored before it
have neither: their tables print the IoU as before and say "n/a: re-run rmi eval" where an
interval or a boundary IoU needs the counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("boundary_miou", sa.Float(), nullable=True))
    with op.batch_alter_table("class_iou") as batch:
        batch.add_column(sa.Column("boundary_iou", sa.Float(), nullable=True))
    op.create_table(
        "image_counts",
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("num_images", sa.Integer(), nullable=False),
        sa.Column("num_classes", sa.Integer(), nullable=False),
        sa.Column("names_json", sa.JSON(), nullable=False),
        sa.Column("encoding", sa.String(length=64), nullable=False),
        sa.Column("counts", sa.LargeBinary(), nullable=False),
        sa.Column("boundary_fraction", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_image_counts_evaluation_id_evaluations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("evaluation_id", name=op.f("pk_image_counts")),
    )


def downgrade() -> None:
    op.drop_table("image_counts")
    with op.batch_alter_table("class_iou") as batch:
        batch.drop_column("boundary_iou")
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("boundary_miou")
