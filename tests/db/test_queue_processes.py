"""Real processes on one database: every job claimed exactly once, nothing lost, no lock errors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from rmi_cli.db import head_revision, open_database, status_counts
from rmi_cli.db.migrate import current_revision

WORKER = Path(__file__).with_name("queue_worker.py")
JOBS = 48


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> None:
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "locked" not in err.lower()


def claims(log: Path) -> list[tuple[int, ...]]:
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    return [tuple(map(int, line.split())) for line in lines if not line.startswith("done")]


def test_four_workers_create_queue_and_drain_exactly_once(db_url: str, tmp_path: Path) -> None:
    """Four processes start at once on a database that does not exist yet: they race to create
    it, all queue the same 48 jobs (idempotently), then drain the queue."""
    logs = [tmp_path / f"worker-{i}.log" for i in range(4)]
    workers = [
        start(db_url, f"w{i}", str(log), "--enqueue", str(JOBS)) for i, log in enumerate(logs)
    ]
    for process in workers:
        finish(process)
    claimed = [claim[0] for log in logs for claim in claims(log)]
    assert len(claimed) == JOBS
    assert max(Counter(claimed).values()) == 1  # no job claimed twice
    with open_database(db_url, create=False) as db:
        assert current_revision(db) == head_revision()
        counts = status_counts(db)
    assert counts == {"queued": 0, "running": 0, "done": JOBS, "failed": 0, "stale": 0}


def test_a_job_held_by_a_killed_worker_is_reclaimed(tmp_path: Path) -> None:
    url, log = str(tmp_path / "rmi.db"), tmp_path / "claims.log"
    doomed = start(url, "doomed", str(log), "--enqueue", "1", "--die-holding-a-job")
    doomed.communicate(timeout=60)
    assert doomed.returncode == -9
    with open_database(url, create=False) as db:
        assert status_counts(db)["running"] == 1
    time.sleep(0.6)  # the grace period (the lease) runs out
    finish(start(url, "rescuer", str(log)))
    assert claims(log) == [(1, 1, 0), (1, 2, 1)]  # same job, second attempt, reclaimed
    with open_database(url, create=False) as db:
        assert status_counts(db)["done"] == 1
