"""A queue worker for the multi-process tests (run as a script, not collected by pytest).

    python queue_worker.py DB WORKER LOG [--enqueue N] [--die-holding-a-job]

Opens (creating it if needed) the database, queues the N jobs of experiment "grid" (idempotent,
so every worker may do it), then claims and completes jobs until the queue is empty, appending
"job-id attempts reclaimed" to LOG for each claim. With --die-holding-a-job it claims one job
with a short lease and kills itself (like kill -9).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

from rmi_cli.db import JobSpec, claim, complete, enqueue_experiment, heartbeat, open_database


def grid(size: int) -> list[JobSpec]:
    return [
        JobSpec(kind="train", config={"job": i}, config_hash=f"job-{i:03d}", name=f"job-{i}")
        for i in range(size)
    ]


def main(url: str, worker: str, log: Path, size: int, die: bool) -> None:
    with open_database(url) as db, log.open("a") as out:
        if size:
            enqueue_experiment(db, "grid", grid(size))
        while (job := claim(db, worker=worker, lease_s=0.5 if die else 60)) is not None:
            out.write(f"{job.id} {job.attempts} {int(job.reclaimed)}\n")
            out.flush()
            if die:
                os.kill(os.getpid(), signal.SIGKILL)
            if not heartbeat(db, job.id, worker, lease_s=60):
                raise SystemExit(f"{worker} lost job {job.id} it had just claimed")
            time.sleep(0.002)  # "work"
            if not complete(db, job.id, worker):
                raise SystemExit(f"{worker} could not complete job {job.id}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("worker")
    parser.add_argument("log", type=Path)
    parser.add_argument("--enqueue", type=int, default=0)
    parser.add_argument("--die-holding-a-job", action="store_true")
    args = parser.parse_args()
    main(args.url, args.worker, args.log, args.enqueue, args.die_holding_a_job)
