"""Four `rmi worker` processes drain one SQLite queue of 40 real (tiny) training runs: every job
runs exactly once, nothing is lost, and no "database is locked" escapes. The queue itself is
tested at the library level in tests/db; this is the whole worker: heartbeat thread, training,
evaluation and result storage, all writing to one file at once."""

from __future__ import annotations

import re
import socket
from collections import Counter
from pathlib import Path

import pytest
from reliability_kit import finish, manifest, query, remove_run_folders, rmi, runs_table, start_rmi

from rmi_cli.runner.holders import WorkerId

pytestmark = pytest.mark.slow

WORKERS = 4
SEEDS = range(10)
# 4 loss settings x 10 seeds = 40 runs of one iteration on 16x16 images.
RUNS = {
    "ce": "{loss: {name: ce}}",
    "bce": "{loss: {name: bce}}",
    "rmi": "{loss: {name: rmi, pool: avg, pool_size: 2, radius: 3}}",
    "rmi-max": "{loss: {name: rmi, pool: max, pool_size: 2, radius: 2}}",
}
JOBS = len(RUNS) * len(SEEDS)
CLAIM = re.compile(r"^\[(?P<worker>[^\]]+)\] train (?P<name>\S+), attempt (?P<attempt>\d+)", re.M)


def test_four_workers_drain_forty_training_runs_exactly_once(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(manifest(RUNS, name="grid", seeds=SEEDS))
    queued = rmi("ablate", "m.yaml", "-e", "grid", "--workers", "0", "--db", "rmi.db", cwd=tmp_path)
    assert queued.code == 0, queued
    assert f"grid: {JOBS} queued" in queued.err
    try:
        logs = [tmp_path / f"worker-{i}" for i in range(WORKERS)]
        processes = [
            start_rmi("worker", "--db", "rmi.db", "--lease", "5", cwd=tmp_path, log=log)
            for log in logs
        ]
        results = [finish(p, log, timeout=300) for p, log in zip(processes, logs, strict=True)]
    finally:
        remove_run_folders(tmp_path)
    pids = {p.pid for p in processes}

    claims: list[tuple[str, str, int]] = []
    for result in results:
        assert result.code == 0, result
        output = (result.out + result.err).lower()
        assert "locked" not in output and "traceback" not in output, result
        assert "error" not in output and "heartbeat failed" not in output, result
        claims += [(m["name"], m["worker"], int(m["attempt"])) for m in CLAIM.finditer(result.err)]

    # Each job claimed once, by one of the four, at its first attempt; all four took part
    # (each finished jobs in the others' presence, so they really ran concurrently).
    assert len(claims) == JOBS
    assert max(Counter(name for name, _, _ in claims).values()) == 1
    assert {attempt for _, _, attempt in claims} == {1}
    by_worker = Counter(worker for _, worker, _ in claims)
    hosts_pids = {(w.host, w.pid) for w in map(WorkerId.parse, by_worker) if w is not None}
    assert hosts_pids <= {(socket.gethostname(), pid) for pid in pids}, by_worker
    assert len(hosts_pids) == len(by_worker) >= 2, by_worker
    done = sum(int(re.search(r"done: (\d+), failed: 0", r.err)[1]) for r in results)  # type: ignore[index]
    assert done == JOBS

    db = tmp_path / "rmi.db"
    runs = runs_table(db)
    assert len(runs) == JOBS
    claimed_by = {name: worker for name, worker, _ in claims}
    for name, run in runs.items():
        assert (run["status"], run["attempts"], run["error"]) == ("done", 1, None), name
        assert run["worker"] == claimed_by[name]
    # One training result, one metrics row (one iteration) and one evaluation per run.
    for table in ("train_results", "train_metrics", "evaluations"):
        counts = query(db, f"SELECT run_id, count(*) FROM {table} GROUP BY run_id")
        assert sorted(counts) == sorted((run["id"], 1) for run in runs.values()), table
