"""SIGTERM / SIGINT to a worker in the middle of a run: it checkpoints, gives the job back
(queued, the attempt not counted), exits 130 with one error line and no traceback; a later
worker resumes the run from that checkpoint and finishes it (checked after SIGTERM only: from
the release on, nothing depends on the signal). Ctrl-C to `rmi ablate` with two workers: the
same for both, and 130 for the command."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest
from reliability_kit import (
    finish,
    manifest,
    query,
    remove_run_folders,
    rmi,
    runs_table,
    start_rmi,
    wait_for,
)

pytestmark = pytest.mark.slow

ITERATIONS = 25  # 16x16 crops: a few hundredths of a second each
MANIFEST = manifest(
    {"ce": "{loss: {name: ce}}"},
    name="stop",
    # No checkpoint before the end: the one found afterwards is the stop's own.
    train=f"iterations: {ITERATIONS}, checkpoint_every: 1000, log_every: 1",
)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_worker_checkpoints_and_releases_its_job(
    number: signal.Signals, tmp_path: Path
) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST)
    queued = rmi("ablate", "m.yaml", "-e", "stop", "--workers", "0", "--db", "rmi.db", cwd=tmp_path)
    assert queued.code == 0, queued
    db = tmp_path / "rmi.db"
    run = runs_table(db)["stop/ce"]
    checkpoints = tmp_path / "runs" / run["config_hash"] / "checkpoints"
    try:
        worker = start_rmi(
            "worker", "--db", "rmi.db", "--lease", "5", cwd=tmp_path, log=tmp_path / "w"
        )

        def trained_a_little() -> bool:
            assert worker.poll() is None, finish(worker, tmp_path / "w")
            return query(db, "SELECT count(*) FROM train_metrics")[0][0] >= 3

        wait_for(trained_a_little, timeout=120, what="three reported iterations")
        worker.send_signal(number)
        stopped = finish(worker, tmp_path / "w")

        assert stopped.code == 130, stopped
        assert "Traceback" not in stopped.err
        (line,) = [line for line in stopped.err_lines if line.startswith("error:")]
        at = int(line.split("run stopped at iteration ")[1].split()[0])
        assert 3 <= at < ITERATIONS
        assert f"of {ITERATIONS}; checkpoint saved to {checkpoints / f'iter-{at}.pt'}" in line
        assert sorted(p.name for p in checkpoints.glob("*.pt")) == [f"iter-{at}.pt", "last.pt"]
        row = runs_table(db)["stop/ce"]
        assert (row["status"], row["attempts"], row["worker"], row["error"]) == (
            "queued",
            0,
            None,
            None,
        )

        if number != signal.SIGTERM:
            return
        resumed = rmi("worker", "--db", "rmi.db", cwd=tmp_path, timeout=300)
    finally:
        remove_run_folders(tmp_path)
    assert resumed.code == 0, resumed
    assert "train stop/ce, attempt 1" in resumed.err
    row = runs_table(db)["stop/ce"]
    assert (row["status"], row["attempts"], row["error"]) == ("done", 1, None)
    result = query(
        db, "SELECT iterations, resumed_from FROM train_results WHERE run_id = ?", (row["id"],)
    )
    assert result == [(ITERATIONS, at)]
    reported = query(db, "SELECT iteration FROM train_metrics WHERE run_id = ?", (row["id"],))
    assert [i for (i,) in reported] == list(range(1, ITERATIONS + 1))


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("target", ["ctrl-c", "one worker"])
def test_an_interrupted_ablate_with_two_workers_exits_130(target: str, tmp_path: Path) -> None:
    """`rmi ablate --workers 2` exited 1 with "1 job(s) failed: 1 of 2 workers" when a worker
    was interrupted, although its run was checkpointed and given back. Ctrl-C (SIGINT to the
    terminal's process group) now reaches each worker once, from `rmi ablate`; a worker stopped
    on its own is an interruption too: exit 130 either way."""
    two = manifest(
        {"ce": "{loss: {name: ce}}", "bce": "{loss: {name: bce}}"},
        name="stop",
        train=f"iterations: {ITERATIONS * 2}, checkpoint_every: 1000, log_every: 1",
    )
    (tmp_path / "m.yaml").write_text(two)
    db, log = tmp_path / "rmi.db", tmp_path / "ablate"
    try:
        ablate = start_rmi(
            "ablate", "m.yaml", "-e", "stop", "--workers", "2", "--db", "rmi.db",
            cwd=tmp_path, log=log, new_session=True,
        )  # fmt: skip

        def both_training() -> bool:
            assert ablate.poll() is None, finish(ablate, log)
            try:  # the file exists a moment before its tables do
                return query(db, "SELECT count(DISTINCT run_id) FROM train_metrics")[0][0] == 2
            except sqlite3.OperationalError:
                return False

        wait_for(both_training, timeout=180, what="both workers to report an iteration")
        if target == "ctrl-c":
            os.killpg(ablate.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        else:
            os.kill(children(ablate.pid)[0], signal.SIGINT)
        stopped = finish(ablate, log, timeout=180)
    finally:
        remove_run_folders(tmp_path)
    assert stopped.code == 130, stopped
    assert "Traceback" not in stopped.err
    count = 2 if target == "ctrl-c" else 1
    assert stopped.err_lines[-1] == (
        f"error: interrupted: {count} of 2 workers stopped, their runs checkpointed and given "
        f"back to the queue (rmi worker or this command again resumes them)"
    )
    statuses = sorted((r["status"], r["attempts"]) for r in runs_table(db).values())
    if target == "ctrl-c":
        assert statuses == [("queued", 0), ("queued", 0)]
    else:  # the other worker finished its run, then found the stopped one's left for later
        assert statuses[0] == ("done", 1) and statuses[1][0] in ("queued", "done")
