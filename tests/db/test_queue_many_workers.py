"""Many worker processes on one queue, two of them killed with -9 while holding a job: every job
is completed exactly once, the killed workers' jobs by the others once their leases run out.
8 workers and 80 jobs on PostgreSQL (SKIP LOCKED), 4 workers and 40 jobs on one SQLite file
(BEGIN IMMEDIATE). Trivial jobs and 1-second leases keep it fast; claims per second are measured
by benchmarks/queue_bench.py, not here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from queue_worker import grid
from test_queue_processes import WORKER

from rmi_cli.db import enqueue_experiment, open_database, status_counts
from rmi_cli.db.schema import Run

LEASE_S = 1.0
WORK_S = 0.05
VICTIMS = 2


def start(url: str, name: str, log: Path, *extra: str) -> subprocess.Popen[str]:
    args = [url, name, str(log), "--lease", str(LEASE_S), "--work-s", str(WORK_S)]
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def held(log: Path, claim: int) -> bool:
    """Whether the worker has made its `claim`-th claim (and so now holds that job)."""
    return sum(not line.startswith("done") for line in read(log)) >= claim


@pytest.mark.parametrize(("backend", "workers", "jobs"), [("postgresql", 8, 80), ("sqlite", 4, 40)])
def test_workers_drain_exactly_once_while_two_are_killed_mid_job(
    backend: str, workers: int, jobs: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = str(tmp_path / "rmi.db")
    if backend == "postgresql":
        url = request.getfixturevalue("pg_database")
    with open_database(url) as db:
        enqueue_experiment(db, "grid", grid(jobs))
    logs = [tmp_path / f"w{i}.log" for i in range(workers)]
    # The victims hang on their 3rd claim (after two jobs done: they really took part); the
    # others wait for stale jobs to become claimable instead of leaving while any job runs.
    hang = ["--hang-on-claim", "3"]
    processes = [
        start(url, f"w{i}", log, *(hang if i < VICTIMS else []), "--wait-s", "60")
        for i, log in enumerate(logs)
    ]
    try:
        deadline = time.monotonic() + 60
        for log in logs[:VICTIMS]:
            while not held(log, 3):
                assert time.monotonic() < deadline, f"{log.name} never made its 3rd claim"
                time.sleep(0.01)
        for process in processes[:VICTIMS]:
            os.kill(process.pid, signal.SIGKILL)
        for process in processes:
            _, err = process.communicate(timeout=120)
            if process not in processes[:VICTIMS]:
                assert process.returncode == 0, err
                assert "locked" not in err.lower(), err
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()

    assert [p.returncode for p in processes[:VICTIMS]] == [-signal.SIGKILL] * VICTIMS
    claimed = [line.split() for log in logs for line in read(log) if not line.startswith("done")]
    done = [int(line.split()[1]) for log in logs for line in read(log) if line.startswith("done")]
    # Every job completed exactly once; the victims' third jobs were claimed twice (the second
    # time as a takeover, second attempt, by a survivor), every other job once.
    assert sorted(done) == sorted({int(job) for job, _, _ in claimed}) and len(done) == jobs
    counts = Counter(int(job) for job, _, _ in claimed)
    hung = {int(read(log)[-1].split()[0]) for log in logs[:VICTIMS]}
    assert {job for job, n in counts.items() if n > 1} == hung
    assert all(counts[job] == 2 for job in hung) and len(claimed) == jobs + VICTIMS
    rescues = [(int(job), int(attempt), int(taken)) for job, attempt, taken in claimed]
    assert {(job, 2, 1) for job in hung} <= set(rescues)
    with open_database(url, create=False) as db:
        assert status_counts(db) == {
            "queued": 0,
            "running": 0,
            "done": jobs,
            "failed": 0,
            "stale": 0,
        }
        with db.session() as session:
            workers_of_hung = {session.get(Run, job).worker for job in hung}
    assert workers_of_hung.isdisjoint({"w0", "w1"})  # finished by survivors
