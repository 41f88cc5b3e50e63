"""A queue worker for the multi-process tests (run as a script, not collected by pytest).

    python queue_worker.py DB WORKER LOG [--enqueue N] [--die-holding-a-job]
                           [--lease S] [--work-s S] [--hang-on-claim K] [--wait-s S]

Opens (creating it if needed) the database, queues the N jobs of experiment "grid" (idempotent,
so every worker may do it), then claims and completes jobs until the queue is empty, appending
"job-id attempts reclaimed" to LOG for each claim and "done job-id" for each completion. With
--die-holding-a-job it claims one job with a short lease and kills itself (like kill -9).
--work-s: each job "works" that long, heartbeating its lease (--lease) like a real worker;
--hang-on-claim K: the K-th claim works forever (the test kills the process with -9 there);
--wait-s: when nothing is claimable but jobs still run elsewhere, poll again for that long (a
stale job becomes claimable when its lease runs out).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

from rmi_cli.db import (
    Database,
    JobSpec,
    claim,
    complete,
    enqueue_experiment,
    heartbeat,
    open_database,
    status_counts,
)


def grid(size: int) -> list[JobSpec]:
    return [
        JobSpec(kind="train", config={"job": i}, config_hash=f"job-{i:03d}", name=f"job-{i}")
        for i in range(size)
    ]


def work(db: Database, job_id: int, worker: str, seconds: float, lease_s: float) -> None:
    """Sleep `seconds`, renewing the lease every lease_s / 3 (as the real worker's thread)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, lease_s / 3))
        if not heartbeat(db, job_id, worker, lease_s=lease_s):
            raise SystemExit(f"{worker} lost job {job_id} while working on it")


def next_job(db: Database, worker: str, lease_s: float, wait_s: float):
    deadline = time.monotonic() + wait_s
    while (job := claim(db, worker=worker, lease_s=lease_s)) is None:
        counts = status_counts(db)
        if counts["queued"] + counts["running"] == 0 or time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    return job


def main(url: str, worker: str, log: Path, size: int, die: bool, args: argparse.Namespace) -> None:
    lease_s = 0.5 if die else args.lease
    claims = 0
    with open_database(url) as db, log.open("a") as out:
        if size:
            enqueue_experiment(db, "grid", grid(size))
        while (job := next_job(db, worker, lease_s, args.wait_s)) is not None:
            claims += 1
            out.write(f"{job.id} {job.attempts} {int(job.reclaimed)}\n")
            out.flush()
            if die:
                os.kill(os.getpid(), signal.SIGKILL)
            if not heartbeat(db, job.id, worker, lease_s=lease_s):
                raise SystemExit(f"{worker} lost job {job.id} it had just claimed")
            work(db, job.id, worker, 1e9 if claims == args.hang_on_claim else args.work_s, lease_s)
            if not complete(db, job.id, worker):
                raise SystemExit(f"{worker} could not complete job {job.id}")
            out.write(f"done {job.id}\n")
            out.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("worker")
    parser.add_argument("log", type=Path)
    parser.add_argument("--enqueue", type=int, default=0)
    parser.add_argument("--die-holding-a-job", action="store_true")
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--work-s", type=float, default=0.002)
    parser.add_argument("--hang-on-claim", type=int, default=0)
    parser.add_argument("--wait-s", type=float, default=0.0)
    args = parser.parse_args()
    main(args.url, args.worker, args.log, args.enqueue, args.die_holding_a_job, args)
