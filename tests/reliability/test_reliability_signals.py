"""SIGTERM / SIGINT to a worker in the middle of a run: it checkpoints, gives the job back (queued,
the attempt not counted), exits 130 with one error line and no traceback; a later worker
resumes the run from that checkpoint and finishes it (checked after SIGTERM only: from the
release on, nothing depends on the signal)."""

from __future__ import annotations

import signal
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
