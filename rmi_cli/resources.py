"""Files rmi ships beside its code: the Alembic migrations and the experiments manifest."""

from __future__ import annotations

from pathlib import Path

_SOURCE_TREE = Path(__file__).resolve().parents[1]


def migrations_dir() -> Path:
    """The Alembic scripts folder (env.py, versions/)."""
    return _SOURCE_TREE / "migrations"


def experiments_manifest() -> Path:
    """The manifest of the paper's experiments and the quickstart."""
    return _SOURCE_TREE / "experiments.yaml"
