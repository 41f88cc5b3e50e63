"""The app is whole whoever imports it first: no command registers itself on import."""

from __future__ import annotations

import json
import subprocess
import sys

COMMANDS = [
    "ablate", "crf", "db", "demo", "eval", "figure", "report", "status", "table", "train", "worker",
]  # fmt: skip


def _help_commands(first_import: str) -> list[str]:
    """The commands `rmi --help` lists through typer's CliRunner, in a fresh interpreter that
    imported `first_import` before the app."""
    code = (
        f"import json, re; import {first_import}; from typer.testing import CliRunner; "
        "from rmi_cli.cli.app import app; "
        "out = CliRunner().invoke(app, ['--help']).output; "
        "section = out.split('Commands:')[1]; "
        "print(json.dumps(sorted(re.findall(r'^  (\\S+)', section, re.M))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_cli_runner_on_the_app_sees_every_command() -> None:
    assert _help_commands("rmi_cli") == COMMANDS


def test_importing_a_command_module_first_does_not_lose_commands() -> None:
    assert _help_commands("rmi_cli.cli.cmd_run") == COMMANDS
