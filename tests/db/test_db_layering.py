"""`rmi_cli.db` stays on its side of the layering: no torch, no pandas, no CLI, no engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FORBIDDEN = (
    "torch", "torchvision", "pandas", "typer", "yaml", "matplotlib",
    "rmi_cli.losses", "rmi_cli.models", "rmi_cli.data", "rmi_cli.engine", "rmi_cli.crf",
    "rmi_cli.cli", "rmi_cli.report", "rmi_cli.manifest",
)  # fmt: skip
MODULES = ("connect", "database", "enqueue", "leases", "migrate", "results", "rows", "schema")


def test_db_imports_nothing_from_the_torch_side_and_does_nothing(tmp_path: Path) -> None:
    imports = "; ".join(f"import rmi_cli.db.{m}" for m in MODULES)
    code = f"import sys, json; import rmi_cli.db; {imports}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    loaded = set(json.loads(out))
    pulled = sorted(m for m in loaded if m in FORBIDDEN or m.split(".")[0] in FORBIDDEN)
    assert pulled == []
    assert list(tmp_path.iterdir()) == []  # importing created no database
