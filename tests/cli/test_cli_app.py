"""The app is whole whoever imports it first: no command registers itself on import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

COMMANDS = [
    "ablate", "crf", "db", "demo", "eval", "figure", "init", "report", "status", "submit", "table",
    "train", "worker",
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


def test_help_shows_choices_metavars_and_completion(rmi) -> None:
    table = rmi("table", "--help").out
    assert (
        "<methods|per-class|ablation>" in table and "<rich|markdown|latex|html|csv|json>" in table
    )
    assert "<miou|boundary-iou>" in table
    assert "<first|biggest-gain>" in rmi("figure", "qualitative", "--help").out
    assert "<rich|csv|json>" in rmi("status", "--help").out
    train = rmi("train", "--help").out
    assert "--set KEY=VALUE" in train and "--wait" in train
    assert "--install-completion" in rmi("--help").out
    # Shell completion, as a shell runs it: the script, then the candidates it asks for.
    shown = subprocess.run(
        [sys.executable, "-m", "rmi_cli", "--show-completion", "bash"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "_RMI_COMPLETE=complete_bash" in shown.stdout and "complete " in shown.stdout
    env = dict(os.environ, _RMI_COMPLETE="complete_bash", COMP_WORDS="rmi tab", COMP_CWORD="1")
    asked = subprocess.run(
        [sys.executable, "-m", "rmi_cli"], env=env, capture_output=True, text=True, check=False
    )
    assert "table" in asked.stdout.split(), asked
