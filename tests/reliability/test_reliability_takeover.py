"""A dead twin is noticed: `rmi train` killed with kill -9, then the same command again, resumes
at once on the same host (not after the 300 s lease); a holder that may still be alive (its
process runs here, or it runs on another host) is named, with when its lease ends, and
`--wait` waits for it."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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

TRAIN = ("train", "m.yaml", "-e", "tiny", "--run", "ce", "--db", "rmi.db")
LIVE = "iterations: 40, checkpoint_every: 4, log_every: 1"
SHORT = "iterations: 3, checkpoint_every: 100, log_every: 1"


def linux_worker_name(pid: int) -> str:
    """The queue's name for a process, computed here from /proc as the format documents it:
    host:pid:start ticks (field 22 of /proc/<pid>/stat):pid namespace inode."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    start = stat[stat.rfind(")") + 2 :].split()[19]
    namespace = os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")  # noqa: PTH115
    return f"{socket.gethostname()}:{pid}:{start}:{namespace}"


def hold(db: Path, worker: str, *, lease_s: float) -> None:
    """Make `worker` the holder of the (only) run, as its claim would, with a fresh lease."""
    now = datetime.now(UTC).replace(tzinfo=None)
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    with sqlite3.connect(db, timeout=30) as conn:  # commits on leaving the block
        conn.execute(
            "UPDATE runs SET status = 'running', worker = ?, attempts = 1, started_at = ?, "
            "heartbeat_at = ?, lease_expires_at = ?",
            (worker, now.strftime(stamp), now.strftime(stamp),
             (now + timedelta(seconds=lease_s)).strftime(stamp)),
        )  # fmt: skip
    conn.close()


def last_reported(db: Path) -> int:
    return int(query(db, "SELECT coalesce(max(iteration), 0) FROM train_metrics")[0][0])


def checkpoints(db: Path, folder: Path) -> list[int]:
    run = runs_table(db)["tiny/ce"]
    path = folder / "runs" / run["config_hash"] / "checkpoints"
    names = [p.name for p in path.iterdir()] if path.is_dir() else []
    return sorted(int(m[1]) for n in names if (m := re.fullmatch(r"iter-(\d+)\.pt", n)))


@pytest.fixture
def folder(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """The run queued in `tmp_path`/rmi.db: long enough to be killed in the middle for the
    kill -9 test, short for the others (they only need it to finish)."""
    train = LIVE if "kill_9" in request.node.name else SHORT
    (tmp_path / "m.yaml").write_text(manifest({"ce": "{loss: {name: ce}}"}, train=train))
    queued = rmi("ablate", "m.yaml", "-e", "tiny", "--workers", "0", "--db", "rmi.db", cwd=tmp_path)
    assert queued.code == 0, queued
    yield tmp_path
    remove_run_folders(tmp_path)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_train_killed_with_kill_9_resumes_at_once_when_run_again(folder: Path) -> None:
    db = folder / "rmi.db"
    doomed = start_rmi(*TRAIN, cwd=folder, log=folder / "doomed")

    def past_a_checkpoint() -> bool:
        assert doomed.poll() is None, finish(doomed, folder / "doomed")
        return bool(checkpoints(db, folder)) and last_reported(db) > 4

    wait_for(past_a_checkpoint, timeout=120, what="a checkpoint and a report after it")
    os.kill(doomed.pid, signal.SIGKILL)
    assert finish(doomed, folder / "doomed").code == -signal.SIGKILL  # reaped, as a shell does
    held = runs_table(db)["tiny/ce"]
    assert held["status"] == "running" and held["worker"].startswith(f"{socket.gethostname()}:")
    started = time.monotonic()
    again = rmi(*TRAIN, cwd=folder, timeout=280)  # < the 300 s lease: no waiting for it
    took = time.monotonic() - started
    assert again.code == 0, again
    assert f"tiny/ce: its worker {held['worker']} is gone" in again.err, again
    assert "(taken over from a stale worker)" in again.err and "(resuming)" in again.err, again
    run = runs_table(db)["tiny/ce"]
    assert (run["status"], run["attempts"], run["error"]) == ("done", 2, None)
    (resumed_from,) = query(db, "SELECT resumed_from FROM train_results")[0]
    assert resumed_from is not None and resumed_from >= 4
    assert took < 120, f"took {took:.0f} s"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_a_live_holder_here_is_named_and_taken_over_once_gone(folder: Path) -> None:
    db = folder / "rmi.db"
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        worker = linux_worker_name(sleeper.pid)
        hold(db, worker, lease_s=300)
        before = query(db, "SELECT * FROM runs")
        for argv, flag in [(TRAIN, "rmi train --wait"), (("eval", "tiny/ce", "--db", "rmi.db"),
                                                           "rmi eval --wait")]:  # fmt: skip
            refused = rmi(*argv, cwd=folder)
            assert refused.code == 2, refused
            (line,) = refused.err_lines
            who = f"worker {worker} (process {sleeper.pid} on {socket.gethostname()})"
            assert line.startswith(f"error: run tiny/ce is held by {who} since "), line
            assert re.search(r"lease ends \S+ \S+ UTC \(in \d+ s\)", line) and flag in line, line
        assert query(db, "SELECT * FROM runs") == before  # nothing changed
        # A pid that now belongs to another process (same pid, another start time) is not it.
        hold(db, re.sub(r":(\d+):(\d+)$", r":1\1:\2", worker), lease_s=300)
    finally:
        sleeper.kill()
        sleeper.wait()
    resumed = rmi(*TRAIN, cwd=folder, timeout=280)
    assert resumed.code == 0, resumed
    assert "is gone (no such process here)" in resumed.err, resumed
    assert runs_table(db)["tiny/ce"]["status"] == "done"


def test_a_holder_on_another_host_is_named_and_waited_for(folder: Path) -> None:
    db = folder / "rmi.db"
    hold(db, "elsewhere:4242:123:456", lease_s=300)
    refused = rmi(*TRAIN, cwd=folder)
    assert refused.code == 2, refused
    (line,) = refused.err_lines
    assert "is held by worker elsewhere:4242:123:456 (process 4242 on elsewhere)" in line, line
    assert "`rmi train --wait` waits for it (and takes it over if it stops)" in line, line
    # It stops heartbeating: 15 s left (longer than this machine takes to start `rmi`).
    hold(db, "elsewhere:4242:123:456", lease_s=15)
    waited = rmi(*TRAIN, "--wait", cwd=folder, timeout=280)
    assert waited.code == 0, waited
    assert "waiting for it" in waited.err and "(taken over from a stale worker)" in waited.err
    assert runs_table(db)["tiny/ce"]["status"] == "done"
