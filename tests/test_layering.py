"""Layering: each part of the library pulls in only what it is allowed to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "sqlalchemy", "alembic", "typer", "rich", "yaml", "pandas", "pydensecrf")

RUNNER_MODULES = [
    f"rmi_cli.runner.{path.stem}" if path.stem != "__init__" else "rmi_cli.runner"
    for path in sorted((Path(__file__).parents[1] / "rmi_cli" / "runner").glob("*.py"))
]
# module -> heavy packages it must not import (directly or through its imports)
TORCH_SIDE = {"sqlalchemy", "alembic", "typer", "yaml", "pandas"}
SHARED = {"torch", "sqlalchemy", "alembic", "typer", "rich", "yaml", "pandas", "pydensecrf"}
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
    "rmi_cli.engine.distributed": TORCH_SIDE,
    # the database and the reports know nothing of torch
    "rmi_cli.db": {"torch", "typer", "rich", "pandas", "pydensecrf"},
    "rmi_cli.report": {"torch", "sqlalchemy", "alembic", "typer", "pydensecrf"},
    "rmi_cli.manifest": {"torch", "sqlalchemy", "alembic", "typer", "rich", "pandas"},
    # the runner joins both sides and is a Python API: no CLI (typer, rich) at all; torch,
    # pandas and pydensecrf only once work runs or a table is built
    **{module: {"typer", "rich", "torch", "pandas", "pydensecrf"} for module in RUNNER_MODULES},
    "rmi_cli.run_folder": SHARED,
    # the shared vocabulary imports nothing heavy (pydantic only)
    "rmi_cli.config": SHARED,
    "rmi_cli.records": SHARED,
    "rmi_cli.iou": SHARED,
    "rmi_cli.errors": SHARED,
    "rmi_cli.constants": SHARED,
    # deciding how to launch (torchrun, Slurm) happens before anything heavy is imported
    "rmi_cli.launch": SHARED,
    "rmi_cli.resources": SHARED,
    "rmi_cli.stored": SHARED,
    "rmi_cli.registry": SHARED,
    # `rmi --help` and `rmi status` pay for neither torch nor pandas (only `rmi table` draws)
    "rmi_cli.cli.app": {"torch", "pydensecrf", "pandas"},
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


def test_cli_package_holds_only_commands_and_views() -> None:
    """Orchestration lives in the runner: every module of rmi_cli/cli is a command module
    (`cmd_*`: parse, call the runner, print), a view, or the app's plumbing."""
    plumbing = {"__init__", "app", "console", "options"}
    folder = Path(__file__).parents[1] / "rmi_cli" / "cli"
    others = {
        path.stem
        for path in folder.glob("*.py")
        if path.stem not in plumbing
        and not path.stem.startswith("cmd_")
        and not path.stem.endswith(("views", "view"))
    }
    assert others == set(), f"rmi_cli/cli holds more than commands and views: {sorted(others)}"
