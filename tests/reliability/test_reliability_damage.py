"""A damaged SQLite file: one line naming what can fix it, and that advice works when followed.

The break-test overwrote one page with `dd if=/dev/urandom of=rmi.db bs=4096 seek=7 count=1
conv=notrunc`; every command then printed a ~77-line traceback. The line now names the backup
`rmi db upgrade` keeps and SQLite's salvage command: both are followed here.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from reliability_kit import file_hash, manifest, rmi

from rmi_cli.db import open_database
from rmi_cli.db.migrate import migrate_to, revisions

GOOD_MANIFEST = manifest({"ce": "{loss: {name: ce}}"})


def damage_runs_page(db: Path) -> None:
    """The break-test's dd, aimed at the page that holds the `runs` table (every command reads
    it), so that the damage is met whatever the page layout."""
    (page,) = (
        sqlite3.connect(db).execute("SELECT pageno FROM dbstat WHERE name = 'runs'").fetchone()
    )
    command = ["dd", "if=/dev/urandom", f"of={db.name}", "bs=4096", f"seek={page - 1}", "count=1",
               "conv=notrunc"]  # fmt: skip
    for _ in range(5):  # random bytes that happen to form a valid page are redrawn
        subprocess.run(command, cwd=db.parent, check=True, capture_output=True)
        try:
            with closing(sqlite3.connect(db)) as conn:
                rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError:
            return
        if rows != [("ok",)]:
            return
    raise AssertionError("five random pages in a row passed SQLite's quick_check")


def test_the_line_names_the_backup_db_upgrade_kept_and_restoring_it_works(tmp_path: Path) -> None:
    db = tmp_path / "rmi.db"
    with open_database(str(db), check_schema=False) as database:
        migrate_to(database, revisions()[0])  # an old schema, so that the upgrade backs it up
    assert rmi("db", "upgrade", "--db", "rmi.db", cwd=tmp_path).code == 0
    (backup,) = tmp_path.glob("rmi.db.bak-*")
    (tmp_path / "m.yaml").write_text(GOOD_MANIFEST)
    queued = rmi("ablate", "m.yaml", "-e", "tiny", "--workers", "0", "--db", "rmi.db", cwd=tmp_path)
    assert queued.code == 0, queued
    damage_runs_page(db)
    before = file_hash(db)

    result = rmi("status", "--db", "rmi.db", cwd=tmp_path)
    assert result.code == 2, result
    (line,) = result.err_lines
    assert "Traceback" not in result.err
    assert line.startswith(f"error: {db}: the database file is damaged (database disk image"), line
    assert f"newest: {backup.name})" in line and f"sqlite3 {db} .recover" in line, line
    assert file_hash(db) == before

    # Following the advice: stop (nothing runs), restore the backup, upgrade it again.
    shutil.copy(backup, db)
    assert rmi("db", "upgrade", "--db", "rmi.db", cwd=tmp_path).code == 0
    assert rmi("status", "--db", "rmi.db", cwd=tmp_path).code == 0


def _sqlite3_recovers(folder: Path) -> str | None:
    """Why the local sqlite3 cannot run .recover (None when it can)."""
    if shutil.which("sqlite3") is None:
        return "no sqlite3 command here"
    with closing(sqlite3.connect(folder / "probe.db")) as conn:
        conn.execute("CREATE TABLE t (x)")
    probe = subprocess.run(
        ["sqlite3", str(folder / "probe.db"), ".recover"], capture_output=True, text=True
    )
    if probe.returncode != 0 or "error" in probe.stderr:
        return (
            f"this sqlite3 cannot run .recover ({probe.stderr.strip()}): Debian's and Ubuntu's "
            f"builds lack the sqlite_dbpage table it reads; sqlite.org's have it"
        )
    return None


def test_the_recover_command_in_the_line_gives_a_file_rmi_opens(tmp_path: Path) -> None:
    missing = _sqlite3_recovers(tmp_path)
    if missing:
        pytest.skip(missing)
    (tmp_path / "m.yaml").write_text(GOOD_MANIFEST)
    queued = rmi("ablate", "m.yaml", "-e", "tiny", "--workers", "0", "--db", "rmi.db", cwd=tmp_path)
    assert queued.code == 0, queued
    damage_runs_page(tmp_path / "rmi.db")
    (line,) = rmi("status", "--db", "rmi.db", cwd=tmp_path).err_lines
    match = re.search(r"salvage what is readable: (sqlite3 \S+ \.recover \| sqlite3 (\S+))", line)
    assert match is not None, line
    subprocess.run(match[1], shell=True, cwd=tmp_path, check=True, capture_output=True)
    result = rmi("status", "--db", match[2], cwd=tmp_path)
    assert result.code == 0, result
