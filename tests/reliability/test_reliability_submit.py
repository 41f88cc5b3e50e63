"""`rmi submit` through submitit's local executor (no Slurm here) against a real PostgreSQL
server: K=3 "jobs", each an ordinary `rmi worker`, drain a 12-run grid exactly once, and
`rmi status` shows which job held which run. The Slurm executor differs only in how submitit
starts the same pickled `rmi worker` command (sbatch instead of a local process)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from reliability_kit import manifest, remove_run_folders, rmi

pytestmark = pytest.mark.slow

JOBS = 3
SEEDS = range(6)
RUNS = {"ce": "{loss: {name: ce}}", "bce": "{loss: {name: bce}}"}  # x 6 seeds = 12 runs
CLAIM = re.compile(r"^\[(?P<worker>[^\]]+)\] train (?P<name>\S+), attempt (?P<attempt>\d+)", re.M)


def test_three_local_jobs_drain_a_twelve_run_grid_exactly_once(
    pg_database: str, tmp_path: Path
) -> None:
    (tmp_path / "m.yaml").write_text(manifest(RUNS, name="grid", seeds=SEEDS))
    argv = ("submit", "m.yaml", "-e", "grid", "--local", "--jobs", str(JOBS), "--time", "10",
            "--logs", "slurm", "--db", pg_database, "--runs-dir", "runs")  # fmt: skip
    try:
        result = rmi(*argv, cwd=tmp_path, timeout=600)
    finally:
        remove_run_folders(tmp_path)
    assert result.code == 0, result
    assert "grid: 12 queued" in result.err
    job_ids = result.out.split()
    assert len(job_ids) == JOBS and len(set(job_ids)) == JOBS, result

    logs = "".join(p.read_text() for p in (tmp_path / "slurm").glob("*_log.*"))
    claims = [(m["name"], m["worker"], int(m["attempt"])) for m in CLAIM.finditer(logs)]
    assert len(claims) == 12, logs
    assert max(Counter(name for name, _, _ in claims).values()) == 1
    assert {attempt for _, _, attempt in claims} == {1}
    # Every worker names its job ("host:pid@local:ID"); the claims came from the printed jobs.
    held_by = {worker.rsplit("@local:", 1)[1] for _, worker, _ in claims}
    assert held_by <= set(job_ids) and len(held_by) >= 2, (held_by, job_ids)

    status = rmi("status", "--db", pg_database, "--format", "json", cwd=tmp_path)
    assert status.code == 0, status
    rows = json.loads(status.out)
    assert len(rows) == 12 and {row["status"] for row in rows} == {"done"}
    assert {row["worker"].rsplit("@local:", 1)[1] for row in rows} == held_by
    assert {(row["name"], row["worker"]) for row in rows} == {(n, w) for n, w, _ in claims}

    # Submitting again queues nothing new; the one worker finds nothing to do.
    again = rmi(*argv[:6], "1", *argv[7:], cwd=tmp_path, timeout=300)
    assert again.code == 0, again
    assert "grid: 0 queued" in again.err and "12 already done" in again.err
