"""`rmi status`, `rmi worker`, `rmi db current|upgrade`, an out-of-date schema, and the help of
every command. The schema's agreement with the models after migrating from empty is
tests/db/test_migrate.py::test_models_and_migrated_schema_do_not_differ (`schema_diff`)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from cli_kit import EXPERIMENT, Rmi, Workspace, counts, single_line_error

import rmi_cli.db.migrate as migrate
from rmi_cli import __version__
from rmi_cli.db import VERSION_TABLE, head_revision

COUNTS = "tiny: 0 queued, 0 running, 3 done, 0 failed at "


def test_status_as_a_table(trained: Workspace, rmi: Rmi) -> None:
    result = rmi("status", "--db", trained.db)
    assert result.code == 0, str(result)
    assert result.out.startswith("runs\n┏")
    for name in ("tiny/ce", "tiny/rmi", "tiny/ce+crf"):
        assert f"│ {name} " in result.out
    assert result.err.startswith("0 queued, 0 running, 3 done, 0 failed at ")


def test_status_as_csv_and_json(trained: Workspace, rmi: Rmi) -> None:
    as_csv = rmi("status", "-e", EXPERIMENT, "--format", "csv", "--db", trained.db)
    as_json = rmi("status", "-e", EXPERIMENT, "--format", "json", "--db", trained.db)
    assert as_csv.code == as_json.code == 0, str(as_csv) + str(as_json)
    assert as_csv.err.startswith(COUNTS) and as_json.err.startswith(COUNTS)
    rows = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert list(rows[0]) == ["name", "kind", "status", "attempts", "worker", "heartbeat", "error"]
    assert [(r["name"], r["kind"], r["status"], r["attempts"]) for r in rows] == [
        ("tiny/ce", "train", "done", "1/3"),
        ("tiny/rmi", "train", "done", "1/3"),
        ("tiny/ce+crf", "crf", "done", "1/3"),
    ]

    # The two calls ran at different times: the heartbeat's age ("12 s ago") may differ.
    def timeless(records: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k != "heartbeat"} for r in records]

    assert timeless(json.loads(as_json.out)) == timeless(rows)
    assert all(re.fullmatch(r"\d+ s ago", r["heartbeat"]) for r in json.loads(as_json.out))


def test_status_of_one_run(trained: Workspace, rmi: Rmi) -> None:
    result = rmi("status", "--run", "tiny/ce", "--db", trained.db)
    assert result.code == 0, str(result)
    lines = result.out.splitlines()
    assert lines[:2] == ["experiment: tiny", "name: ce"]
    assert "status: done" in lines and "attempts: 1" in lines
    assert any(line.startswith("training: 3 reports, last at iteration 3: loss ") for line in lines)
    assert any(line.startswith("evaluation val/none: mIoU ") for line in lines)
    crf = rmi("status", "--run", "ce+crf", "--db", trained.db)
    assert "evaluation val/crf-1: mIoU " in crf.out
    as_json = rmi("status", "--run", "tiny/ce", "--format", "json", "--db", trained.db)
    detail = json.loads(as_json.out)
    assert (detail["name"], detail["status"], detail["kind"]) == ("ce", "done", "train")
    assert detail["config"]["loss"]["name"] == "ce" and detail["training"]["iterations"] == 3
    assert detail["checkpoint"].endswith("iter-3.pt")
    (evaluation,) = detail["evaluations"]
    assert evaluation["split"] == "val" and evaluation["inference_median_ms"] > 0
    assert evaluation["protocol"]["warmup_images"] == 1
    refused = rmi("status", "--run", "tiny/ce", "--format", "csv", "--db", trained.db)
    assert (refused.code, refused.err) == (
        2, "error: --format csv: one run is shown as rich (text) or json\n"
    )  # fmt: skip


def test_worker_on_an_empty_queue(workspace: Workspace, rmi: Rmi) -> None:
    before = workspace.db.read_bytes()
    result = rmi("worker", "--db", workspace.db)
    assert result.code == 0, str(result)
    assert result.out == ""
    assert result.err.endswith("] done: 0, failed: 0\n")
    assert workspace.db.read_bytes() == before


def test_db_current_and_upgrade_at_head(workspace: Workspace, rmi: Rmi) -> None:
    before = workspace.db.read_bytes()
    current = rmi("db", "current", "--db", workspace.db)
    assert (current.code, current.err) == (0, "")
    assert current.out == f"{head_revision()} (this rmi needs {head_revision()}: up to date)\n"
    upgrade = rmi("db", "upgrade", "--db", workspace.db)
    assert (upgrade.code, upgrade.out) == (0, "")
    assert upgrade.err == f"{workspace.db}: already at the current schema ({head_revision()})\n"
    assert workspace.db.read_bytes() == before
    assert not [p for p in workspace.root.iterdir() if ".bak" in p.name]


NEXT_REVISION = '''"""Test-only revision after the real head."""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("note")
'''


@pytest.fixture
def newer_rmi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This rmi, with one migration more than the databases written so far; its old head."""
    head = head_revision()
    folder = tmp_path / "migrations"
    shutil.copytree(
        migrate.migrations_folder(), folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    (folder / "versions" / "9001_test_note.py").write_text(NEXT_REVISION.format(head=head))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", folder)
    return head


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["table", "-e", EXPERIMENT],
        ["worker"],
        ["eval", "tiny/ce"],
        ["crf", "--run", "tiny/ce"],
        ["train", "--set", "train.iterations=2"],
    ],
    ids=lambda command: command[0],
)
def test_an_old_schema_is_refused_untouched(
    workspace: Workspace, rmi: Rmi, newer_rmi: str, command: list[str]
) -> None:
    before = workspace.db.read_bytes()
    result = rmi(*command, "--db", workspace.db)
    assert (result.code, result.out) == (2, ""), str(result)
    assert single_line_error(result) == (
        f"{workspace.db}: the database schema is at revision {newer_rmi}, this version of rmi "
        f"needs 9001; run `rmi db upgrade`"
    )
    assert workspace.db.read_bytes() == before


def test_db_upgrade_migrates_an_old_schema_keeping_its_rows(
    workspace: Workspace, rmi: Rmi, newer_rmi: str
) -> None:
    rows = counts(workspace.db)
    current = rmi("db", "current", "--db", workspace.db)
    assert current.out == f"{newer_rmi} (this rmi needs 9001: run `rmi db upgrade`)\n"
    result = rmi("db", "upgrade", "--db", workspace.db)
    assert result.code == 0, str(result)
    (backup,) = [p for p in workspace.root.iterdir() if ".bak" in p.name]
    assert backup.name.startswith(f"rmi.db.bak-{newer_rmi}-")
    assert result.err == f"{workspace.db}: upgraded {newer_rmi} -> 9001; backup: {backup}\n"
    assert counts(workspace.db) == rows
    assert counts(backup) == rows
    table = rmi("table", "-e", EXPERIMENT, "-k", "methods", "-f", "csv", "--db", workspace.db)
    assert table.code == 0, str(table)
    assert table.out.count("\nours,") == 3


def test_db_current_on_a_newer_schema_says_to_upgrade_rmi(workspace: Workspace, rmi: Rmi) -> None:
    with sqlite3.connect(workspace.db) as raw:
        raw.execute(f"UPDATE {VERSION_TABLE} SET version_num = '0099'")
    raw.close()
    current = rmi("db", "current", "--db", workspace.db)
    assert current.code == 0, str(current)
    assert current.out == (
        f"0099 (this rmi needs {head_revision()}: a newer rmi wrote it: upgrade rmi "
        f"(pip install -U rmi-cli))\n"
    )


COMMANDS = [
    ["ablate"], ["worker"], ["status"], ["train"], ["eval"], ["crf"], ["table"], ["demo"],
    ["db"], ["db", "upgrade"], ["db", "current"], ["report"], ["figure"],
    ["figure", "qualitative"], ["figure", "curves"], ["figure", "ablation"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(rmi: Rmi, command: list[str]) -> None:
    result = rmi(*command, "--help")
    assert result.code == 0, str(result)
    assert result.out.startswith(f"Usage: rmi {' '.join(command)} ")
    assert re.search(r"^  Examples?: .*\brmi ", result.out, re.MULTILINE), result.out
    assert result.err == ""


def test_rmi_help_and_version(rmi: Rmi, tmp_path: Path) -> None:
    result = rmi("--help")
    assert result.code == 0, str(result)
    assert "Start with `rmi demo`, then `rmi ablate experiments.yaml --experiment NAME" in (
        result.out
    )
    version = rmi("--version")
    assert (version.code, version.out) == (0, f"rmi {__version__}\n")
    bare = rmi()  # no command: the help, on stderr, as a usage error
    assert (bare.code, bare.out) == (2, "")
    assert bare.err.startswith("Usage: rmi [OPTIONS] COMMAND [ARGS]...")
    assert not list(tmp_path.iterdir()), "no command creates ./rmi.db"
