"""Experiments remember the tables their manifest declares (`rmi table` renders them by default).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:40:00

A nullable column: experiments queued before it have none, and `rmi table` infers their kinds
from the stored rows as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("tables_json", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("tables_json")
