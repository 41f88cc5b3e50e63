"""Layering: each part of the library pulls in only what it is allowed to."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "sqlalchemy", "alembic", "typer", "yaml", "pandas", "pydensecrf")

# module -> heavy packages it must not import (directly or through its imports)
RULES = {
    "rmi_cli.losses": {"sqlalchemy", "alembic", "typer", "yaml", "pandas"},
    "rmi_cli.config": {"torch", "sqlalchemy", "alembic", "typer", "yaml", "pandas"},
    "rmi_cli.records": {"torch", "sqlalchemy", "alembic", "typer", "yaml", "pandas"},
    "rmi_cli.errors": set(HEAVY),
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
