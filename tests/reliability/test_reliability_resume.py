"""Workers that die or hang while holding a job: leases, stale jobs, reclaim and resume.

- kill -9 in the middle of training: the job shows as stale after the lease, the next worker
  reclaims it and resumes from the last checkpoint, and the result equals an uninterrupted run
  of the same configuration bit for bit (weights, optimiser, metrics, scores). One scenario (a
  module fixture) read by several tests: the runs are the expensive part.
- kill -9 while evaluating: the next worker trains nothing, and the stored training time stays.
- frozen past its lease (SIGSTOP) and replaced: woken up, it leaves the finished run alone.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from reliability_kit import (
    Result,
    file_hash,
    finish,
    manifest,
    metric_rows,
    query,
    remove_run_folders,
    rmi,
    runs_table,
    start_rmi,
    status_json,
    wait_for,
)

from rmi_cli.runner.holders import WorkerId

pytestmark = pytest.mark.slow

ITERATIONS = 24
CHECKPOINT_EVERY = 5
LEASE_S = "3"  # the killed worker's lease: how long its job looks alive after the kill
MANIFEST = manifest(
    {"rmi": "{loss: {name: rmi, pool: avg, pool_size: 2, radius: 3}}"},
    name="resume",
    data=(
        "{name: synthetic, synthetic: {height: 48, width: 64, train_images: 8, val_images: 2, "
        "test_images: 1}, crop_size: 48, scale_range: [0.75, 1.25], workers: 0}"
    ),
    # Checkpoints (5, 10, ...) fall between reports (2, 4, ...) on purpose: the loss window of
    # a half-finished report must survive the restart too.
    train=(
        f"iterations: {ITERATIONS}, warmup_iters: 2, checkpoint_every: {CHECKPOINT_EVERY}, "
        f"log_every: 2"
    ),
)
NAME = "resume/rmi"


@dataclass(frozen=True)
class Scenario:
    db: Path
    reference_db: Path
    run_dir: Path
    reference_dir: Path
    doomed: tuple[str, int]  # workers as (host, pid)
    rescuer: tuple[str, int]
    checkpoint_at_kill: int
    reported_at_kill: int
    stale_rows: list[dict[str, Any]]
    stale_status: Result
    rescue: Result


def checkpoint_iterations(run_dir: Path) -> list[int]:
    folder = run_dir / "checkpoints"
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return sorted(int(m[1]) for n in names if (m := re.fullmatch(r"iter-(\d+)\.pt", n)))


def last_reported(db: Path) -> int:
    return int(query(db, "SELECT coalesce(max(iteration), 0) FROM train_metrics")[0][0])


def queue(folder: Path) -> Path:
    """Queue the one run in `folder`/rmi.db; return its run folder."""
    folder.mkdir()
    (folder / "m.yaml").write_text(MANIFEST)
    result = rmi("ablate", "m.yaml", "-e", "resume", "--workers", "0", "--db", "rmi.db", cwd=folder)
    assert result.code == 0, result
    return folder / "runs" / runs_table(folder / "rmi.db")[NAME]["config_hash"]


def worker_name(pid: int) -> tuple[str, int]:
    return (socket.gethostname(), pid)


def who(worker: str) -> tuple[str, int] | None:
    """A stored worker name's host and pid (the name also carries the process start time)."""
    parsed = WorkerId.parse(worker)
    return (parsed.host, parsed.pid) if parsed else None


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    base = tmp_path_factory.mktemp("resume")
    killed, reference = base / "killed", base / "reference"
    run_dir, reference_dir = queue(killed), queue(reference)
    db = killed / "rmi.db"
    try:
        # The uninterrupted run trains meanwhile; nothing it computes depends on timing.
        straight = start_rmi("worker", "--db", "rmi.db", cwd=reference, log=reference / "w")
        doomed = start_rmi(
            "worker", "--db", "rmi.db", "--lease", LEASE_S, cwd=killed, log=killed / "doomed"
        )

        def past_a_checkpoint() -> bool:
            assert doomed.poll() is None, finish(doomed, killed / "doomed")
            done = checkpoint_iterations(run_dir)
            # Short of the next checkpoint too, in case this poll came late.
            return bool(done) and 0 < last_reported(db) - done[-1] < CHECKPOINT_EVERY

        wait_for(past_a_checkpoint, timeout=120, what="a checkpoint and a report after it")
        os.kill(doomed.pid, signal.SIGKILL)
        assert finish(doomed, killed / "doomed").code == -signal.SIGKILL
        checkpoint_at_kill, reported_at_kill = checkpoint_iterations(run_dir)[-1], last_reported(db)

        def stale() -> tuple[list[dict[str, Any]], Result] | None:
            rows, result = status_json(db, killed)
            return (rows, result) if rows[0]["status"] == "stale" else None

        stale_rows, stale_status = wait_for(
            stale, timeout=60, what="rmi status to show the job stale", poll=0.5
        )
        rescuer = start_rmi(
            "worker", "--db", "rmi.db", "--lease", LEASE_S, cwd=killed, log=killed / "rescuer"
        )
        rescue = finish(rescuer, killed / "rescuer", timeout=300)
        assert finish(straight, reference / "w", timeout=300).code == 0
        yield Scenario(
            db=db,
            reference_db=reference / "rmi.db",
            run_dir=run_dir,
            reference_dir=reference_dir,
            doomed=worker_name(doomed.pid),
            rescuer=worker_name(rescuer.pid),
            checkpoint_at_kill=checkpoint_at_kill,
            reported_at_kill=reported_at_kill,
            stale_rows=stale_rows,
            stale_status=stale_status,
            rescue=rescue,
        )
    finally:
        remove_run_folders(base)


def test_killed_in_the_middle_of_training(scenario: Scenario) -> None:
    """The kill came after a checkpoint and after more training than it holds."""
    assert 0 < scenario.checkpoint_at_kill < scenario.reported_at_kill < ITERATIONS


def test_the_killed_workers_job_shows_as_stale_after_its_lease(scenario: Scenario) -> None:
    (row,) = scenario.stale_rows
    assert row["name"] == NAME
    assert (row["status"], row["attempts"], who(row["worker"])) == ("stale", "1/3", scenario.doomed)
    assert "1 stale: a worker stopped heartbeating" in scenario.stale_status.err


def test_the_next_worker_reclaims_the_job_and_finishes_it(scenario: Scenario) -> None:
    rescue = scenario.rescue
    assert rescue.code == 0, rescue
    assert f"train {NAME}, attempt 2 (taken over from a stale worker)" in rescue.err
    assert f"{NAME}: training in {scenario.run_dir} (resuming)" in rescue.err
    assert "Traceback" not in rescue.err and "error" not in rescue.err.lower()
    run = runs_table(scenario.db)[NAME]
    # Both claims counted; the stale worker's error is cleared by the successful attempt.
    assert (run["status"], run["attempts"], who(run["worker"]), run["error"]) == (
        "done",
        2,
        scenario.rescuer,
        None,
    )
    (resumed_from,) = query(
        scenario.db, "SELECT resumed_from FROM train_results WHERE run_id = ?", (run["id"],)
    )[0]
    assert resumed_from == scenario.checkpoint_at_kill
    # The run's detail, asked for by the name `rmi status` lists it under.
    detail = rmi("status", "--run", NAME, "--db", str(scenario.db), cwd=scenario.db.parent)
    assert detail.code == 0, detail
    assert "status: done\nattempts: 2\n" in detail.out


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    tensors = {f"model.{k}": v for k, v in state["model"].items()}
    for index, entry in state["optimizer"]["state"].items():
        tensors |= {f"optim.{index}.{k}": v for k, v in entry.items() if torch.is_tensor(v)}
    return tensors


def test_the_resumed_run_equals_the_uninterrupted_run_exactly(scenario: Scenario) -> None:
    resumed = _tensors(scenario.run_dir / "checkpoints" / "last.pt")
    straight = _tensors(scenario.reference_dir / "checkpoints" / "last.pt")
    assert resumed.keys() == straight.keys()
    differ = [key for key in straight if not torch.equal(resumed[key], straight[key])]
    assert differ == []
    run_id = runs_table(scenario.db)[NAME]["id"]
    reference_id = runs_table(scenario.reference_db)[NAME]["id"]
    # Reports before the kill were stored again by the resumed run, replacing the first ones.
    assert metric_rows(scenario.db, run_id) == metric_rows(scenario.reference_db, reference_id)
    assert [row[0] for row in metric_rows(scenario.db, run_id)] == list(range(2, 25, 2))
    outcome = (
        "SELECT t.iterations, t.final_loss, t.rmi_fallbacks, e.split, e.miou, e.pixel_accuracy, "
        "e.confusion_json FROM train_results t JOIN evaluations e ON e.run_id = t.run_id "
        "WHERE t.run_id = ?"
    )
    assert query(scenario.db, outcome, (run_id,)) == query(
        scenario.reference_db, outcome, (reference_id,)
    )


def test_a_worker_killed_while_evaluating_keeps_the_measured_training(tmp_path: Path) -> None:
    """The run is trained, its evaluation is not stored: the next worker finds the run finished,
    trains nothing, evaluates, and the stored training time, throughput and memory stay those
    measured by the worker that trained it (not the 0 s of the worker that trained nothing)."""
    slow_eval = manifest(
        {"ce": "{loss: {name: ce}}"},
        name="evaluate",
        data=(
            "{name: synthetic, synthetic: {height: 16, width: 16, train_images: 4, "
            "val_images: 200, test_images: 1}, crop_size: 16, workers: 0}"
        ),
        train="iterations: 2, checkpoint_every: 2, log_every: 1",
    )
    (tmp_path / "m.yaml").write_text(slow_eval)
    queued = rmi(
        "ablate", "m.yaml", "-e", "evaluate", "--workers", "0", "--db", "rmi.db", cwd=tmp_path
    )
    assert queued.code == 0, queued
    db, log = tmp_path / "rmi.db", tmp_path / "doomed"
    summary = "SELECT train_time_s, images_per_s, environment_id, resumed_from FROM train_results"
    try:
        doomed = start_rmi("worker", "--db", "rmi.db", "--lease", LEASE_S, cwd=tmp_path, log=log)

        def evaluating() -> bool:
            assert doomed.poll() is None, finish(doomed, log)
            return bool(query(db, summary))

        wait_for(evaluating, timeout=120, what="the training result, stored before evaluating")
        os.kill(doomed.pid, signal.SIGKILL)
        assert finish(doomed, log).code == -signal.SIGKILL
        (measured,) = query(db, summary)
        assert query(db, "SELECT count(*) FROM evaluations") == [(0,)]
        wait_until_stale(db, tmp_path)
        rescue = rmi("worker", "--db", "rmi.db", "--lease", LEASE_S, cwd=tmp_path, timeout=300)
    finally:
        remove_run_folders(tmp_path)
    assert rescue.code == 0, rescue
    run = runs_table(db)["evaluate/ce"]
    assert (run["status"], run["attempts"], run["error"]) == ("done", 2, None)
    assert query(db, "SELECT count(*) FROM evaluations") == [(1,)]
    assert measured[0] > 0 and measured[3] is None  # trained from scratch, in measurable time
    assert query(db, summary) == [measured]


def test_a_hung_worker_that_wakes_up_after_a_takeover_leaves_the_run_alone(
    tmp_path: Path,
) -> None:
    """A worker frozen (SIGSTOP: a suspended machine, a stalled disk) past its lease is replaced;
    the new worker finishes the run. When the old one wakes up it must stop without writing a
    checkpoint: its state is older than the run folder's, and its last.pt would replace the
    finished run's (what `rmi eval` and the CRF read)."""
    hang = manifest(
        {"ce": "{loss: {name: ce}}"},
        name="hang",
        train="iterations: 20, checkpoint_every: 1000, log_every: 1",
    )
    (tmp_path / "m.yaml").write_text(hang)
    queued = rmi("ablate", "m.yaml", "-e", "hang", "--workers", "0", "--db", "rmi.db", cwd=tmp_path)
    assert queued.code == 0, queued
    db, log = tmp_path / "rmi.db", tmp_path / "frozen"
    folder = tmp_path / "runs" / runs_table(db)["hang/ce"]["config_hash"] / "checkpoints"
    try:
        frozen = start_rmi("worker", "--db", "rmi.db", "--lease", LEASE_S, cwd=tmp_path, log=log)
        wait_for(lambda: last_reported(db) >= 3, timeout=120, what="three reported iterations")
        frozen.send_signal(signal.SIGSTOP)
        try:
            wait_until_stale(db, tmp_path)
            rescue = rmi("worker", "--db", "rmi.db", "--lease", LEASE_S, cwd=tmp_path, timeout=300)
            finished = {path.name: file_hash(path) for path in folder.iterdir()}
        finally:
            frozen.send_signal(signal.SIGCONT)
        woken = finish(frozen, log)
        after = {path.name: file_hash(path) for path in folder.iterdir()}
    finally:
        remove_run_folders(tmp_path)
    assert rescue.code == 0, rescue
    assert sorted(finished) == ["iter-20.pt", "last.pt"]
    assert after == finished  # not a byte of the finished run changed
    assert woken.code == 130, woken
    assert "Traceback" not in woken.err
    (line,) = [line for line in woken.err_lines if line.startswith("error:")]
    assert "another worker took this job over" in line and "without a checkpoint" in line
    run = runs_table(db)["hang/ce"]
    assert (run["status"], run["attempts"], run["error"]) == ("done", 2, None)


def wait_until_stale(db: Path, cwd: Path) -> None:
    """Until `rmi status` shows the (only) job stale: its holder's lease has expired."""
    wait_for(
        lambda: status_json(db, cwd)[0][0]["status"] == "stale",
        timeout=60,
        what="rmi status to show the job stale",
        poll=0.5,
    )
