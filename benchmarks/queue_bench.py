"""How many claims per second the job queue sustains: W worker processes drain J trivial jobs
(claim, heartbeat, complete; no work) from one database, SQLite file or PostgreSQL server.

    python benchmarks/queue_bench.py --backend sqlite --workers 4 --jobs 400
    python benchmarks/queue_bench.py --backend postgresql --workers 8 --jobs 800 \
        --pg-bin /usr/lib/postgresql/15/bin        # a throwaway server in a temporary folder
    python benchmarks/queue_bench.py --backend postgresql --url postgresql+psycopg://...

The workers start together (they wait for a start file), so process start-up is not counted:
claims/s = jobs / (time from the start signal to the last completion). Every job is checked to be
done exactly once. Prints one markdown row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rmi_cli.db import JobSpec, claim, complete, enqueue_experiment, heartbeat, open_database


def worker(url: str, name: str, start_file: Path, out: Path) -> None:
    with open_database(url, create=False) as db:
        while not start_file.exists():
            time.sleep(0.001)
        done = 0
        while (job := claim(db, worker=name, lease_s=60)) is not None:
            heartbeat(db, job.id, name, lease_s=60)
            if not complete(db, job.id, name):
                raise SystemExit(f"{name} lost job {job.id}")
            done += 1
        out.write_text(f"{done} {time.time()}\n")


def queue(url: str, jobs: int) -> None:
    specs = [JobSpec("train", {"job": i}, f"job-{i:05d}", name=f"job-{i}") for i in range(jobs)]
    with open_database(url) as db:
        enqueue_experiment(db, "bench", specs)


def drain(url: str, workers: int, jobs: int, folder: Path) -> float:
    queue(url, jobs)
    start = folder / "start"
    outs = [folder / f"w{i}.out" for i in range(workers)]
    processes = [
        subprocess.Popen([sys.executable, __file__, "--worker", url, f"w{i}", str(start), str(o)])
        for i, o in enumerate(outs)
    ]
    time.sleep(5.0)  # let every worker import and connect
    began = time.time()
    start.touch()
    for process in processes:
        if process.wait() != 0:
            raise SystemExit("a worker failed")
    counts, ends = zip(*(o.read_text().split() for o in outs), strict=True)
    if sum(map(int, counts)) != jobs:
        raise SystemExit(f"{sum(map(int, counts))} jobs done, expected {jobs}")
    return jobs / (max(map(float, ends)) - began)


def throwaway_postgres(pg_bin: Path, folder: Path) -> tuple[str, subprocess.Popen[bytes] | None]:
    """initdb + pg_ctl in `folder` (as `nobody` when root, as the tests do); returns its URL."""
    data = folder / "pg"
    user = "nobody" if os.geteuid() == 0 else None
    if user:
        shutil.chown(folder, user)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = {"check": True, "capture_output": True, "user": user}
    subprocess.run([pg_bin / "initdb", "-D", data, "-U", "rmi", "--auth=trust", "--no-sync"], **run)
    options = f"-k {folder} -h 127.0.0.1 -p {port} -F -c max_connections=100"
    subprocess.run([pg_bin / "pg_ctl", "-D", data, "-o", options, "-w", "-l",
                    folder / "log", "start"], **run)  # fmt: skip
    return f"postgresql+psycopg://rmi@127.0.0.1:{port}/postgres", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--url", help="an existing PostgreSQL database (emptied tables needed)")
    parser.add_argument("--pg-bin", type=Path, default=Path("/usr/lib/postgresql/15/bin"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rmi-queue-bench-"))
    stop = None
    try:
        if args.backend == "sqlite":
            url = str(folder / "bench.db")
        elif args.url:
            url = args.url
        else:
            url, _ = throwaway_postgres(args.pg_bin, folder)
            user = "nobody" if os.geteuid() == 0 else None
            stop = [args.pg_bin / "pg_ctl", "-D", folder / "pg", "-m", "immediate", "stop"], user
        rate = drain(url, args.workers, args.jobs, folder)
        print(f"| {args.backend} | {args.workers} | {args.jobs} | {rate:.0f} |")
    finally:
        if stop is not None:
            subprocess.run(stop[0], check=False, capture_output=True, user=stop[1])
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5]))
    else:
        main()
