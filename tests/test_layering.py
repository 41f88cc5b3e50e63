"""Layering: each part of the library pulls in only what it is allowed to."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "sqlalchemy", "alembic", "typer", "yaml", "pandas", "pydensecrf")

# module -> heavy packages it must not import (directly or through its imports)
TORCH_SIDE = {"sqlalchemy", "alembic", "typer", "yaml", "pandas"}
SHARED = {"torch", "sqlalchemy", "alembic", "typer", "yaml", "pandas", "pydensecrf"}
RULES = {
    # the torch side knows nothing of the database, the CLI, YAML or tables
    "rmi_cli.losses": TORCH_SIDE,
    "rmi_cli.models": TORCH_SIDE,
    "rmi_cli.data": TORCH_SIDE,
    "rmi_cli.metrics": TORCH_SIDE,
    "rmi_cli.crf": TORCH_SIDE | {"pydensecrf"},  # pydensecrf only when a CRF runs
    "rmi_cli.engine.train": TORCH_SIDE,
    "rmi_cli.engine.evaluate": TORCH_SIDE,
    "rmi_cli.engine.predict": TORCH_SIDE,
    # the database and the reports know nothing of torch
    "rmi_cli.db": {"torch", "typer", "pandas", "pydensecrf"},
    "rmi_cli.report": {"torch", "sqlalchemy", "alembic", "typer", "pydensecrf"},
    "rmi_cli.manifest": {"torch", "sqlalchemy", "alembic", "typer", "pandas"},
    # the shared vocabulary imports nothing heavy (pydantic only)
    "rmi_cli.config": SHARED,
    "rmi_cli.records": SHARED,
    "rmi_cli.iou": SHARED,
    "rmi_cli.errors": SHARED,
    "rmi_cli.constants": SHARED,
    # `rmi --help` and `rmi status` pay for neither torch nor pandas (only `rmi table` draws)
    "rmi_cli.cli.commands": {"torch", "pydensecrf", "pandas"},
}


def imported_heavy(module: str) -> set[str]:
    code = (
        f"import sys, json; import {module}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("module", sorted(RULES))
def test_module_imports_only_what_its_layer_allows(module: str) -> None:
    forbidden = imported_heavy(module) & RULES[module]
    assert not forbidden, f"{module} imports {sorted(forbidden)}"
