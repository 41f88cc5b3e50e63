"""Training summaries record how many data-parallel processes trained the run, and each one's batch.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:00:00

Runs trained before it trained in one process: `world_size` 1 (the server default fills the old
rows); `batch_per_rank` stays NULL for them and readers take `train.batch_size` from the config.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("train_results") as batch:
        batch.add_column(
            sa.Column("world_size", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("batch_per_rank", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("train_results") as batch:
        batch.drop_column("batch_per_rank")
        batch.drop_column("world_size")
