"""Database test fixtures: real SQLite files, sample records, and both backends (the throwaway
PostgreSQL server is in tests/conftest.py: the reliability tests use it too)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from db_samples import NEXT_REVISION

import rmi_cli.db.migrate as migrate
from rmi_cli.db import Database, head_revision, open_database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "rmi.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    with open_database(str(db_path)) as database:
        yield database


SECOND_REVISION = '''"""Test-only revision: a NOT NULL column with a default, in a rebuilt table."""

import sqlalchemy as sa
from alembic import op

revision = "{next}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    # recreate="always": SQLite copies `runs` and moves it back, as most real changes will. With
    # foreign keys on, dropping the old `runs` would cascade into its children's rows.
    with op.batch_alter_table("runs", recreate="always") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=False, server_default="none"))


def downgrade():
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("note")
'''


@pytest.fixture
def two_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real migrations plus a test-only revision after the head that rebuilds `runs`."""
    folder = tmp_path / "migrations"
    shutil.copytree(
        migrate.migrations_folder(), folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    text = SECOND_REVISION.replace("{next}", NEXT_REVISION).replace("{head}", head_revision())
    (folder / "versions" / f"{NEXT_REVISION}_test_note.py").write_text(text)
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", folder)
    return folder


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database on each backend: an SQLite file path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "rmi.db")
    return request.getfixturevalue("pg_database")


@pytest.fixture
def any_db(db_url: str) -> Iterator[Database]:
    with open_database(db_url) as database:
        yield database
