"""Data-parallel training on the CPU (gloo, 2 processes) through the commands users type:
`torchrun --nproc-per-node 2 -m rmi_cli train ...` trains what `rmi train ...` trains with the same
global batch, rank 0 alone writes, and under `rmi worker --gpus-per-job 2` a rank killed with -9
takes its group down, the job goes back to the queue, and the next worker group resumes it to
exactly the loss curve of an uninterrupted run.

Tolerances, and why: the two-process run sums the same numbers in another order (per-rank partial
sums of every BatchNorm statistic, of the loss counts and of the gradients, then an all-reduce),
so it is not bit-identical to one process: ~1e-7 relative in float32. This tiny network amplifies
rounding fast (RMI's log-determinants of nearly singular 4x4 matrices, BatchNorm over 16 values
per channel in layer 4): one process with 2 threads instead of 1 ends 1.7e-3 away in the last
loss and 2.7e-2 away in the weights' change (relative norm). So: the first three losses agree to
1e-5 (measured 3e-7), all of them to 1e-2 (measured 2e-3), the weights' change to 0.1 (measured
3.1e-2). BatchNorm statistics left per rank, the classic mistake, moves the first loss by 3e-4
and the weights' change by 1.4: caught. The exact maths (to 1e-9, float64, every loss) is
checked in `tests/engine/test_ddp_gradients.py`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from signal import SIGKILL

import pytest
import torch
from reliability_kit import (
    finish,
    manifest,
    metric_rows,
    query,
    remove_run_folders,
    rmi,
    rmi_env,
    runs_table,
    start_rmi,
    wait_for,
)

pytestmark = pytest.mark.slow

ITERATIONS = 6
TRAIN = f"iterations: {ITERATIONS}, log_every: 1, checkpoint_every: 1"
DATA = (
    "{name: synthetic, synthetic: {height: 32, width: 32, train_images: 8, val_images: 1, "
    "test_images: 1}, crop_size: 32, workers: 0}"
)
RUN = (
    "{loss: {name: rmi, pool_size: 2, radius: 2}, train: {batch_size: 4, lr: 0.002}, "
    "model: {name: deeplabv3, backbone: resnet18, dropout: 0.0}}"
)


def torchrun(*args: str, cwd: Path) -> tuple[int, str]:
    """`torchrun --nproc-per-node 2 -m rmi_cli ARGS`, the README's command."""
    import subprocess

    script = Path(sys.executable).with_name("torchrun")
    command = [str(script), "--nproc-per-node", "2", "-m", "rmi_cli", *args]
    done = subprocess.run(
        command, cwd=cwd, env=rmi_env(), capture_output=True, text=True, timeout=300
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run trained by one process (one.db) and by two (two.db)."""
    folder = tmp_path_factory.mktemp("ddp")
    (folder / "m.yaml").write_text(manifest({"r": RUN}, data=DATA, train=TRAIN))
    one = rmi("train", "m.yaml", "-e", "tiny", "--run", "r", "--db", "one.db",
              "--runs-dir", "runs-one", cwd=folder, timeout=300)  # fmt: skip
    assert one.code == 0, one
    code, output = torchrun("train", "m.yaml", "-e", "tiny", "-r", "r", "--db", "two.db",
                            "--runs-dir", "runs-two", cwd=folder)  # fmt: skip
    assert code == 0, output
    yield folder
    remove_run_folders(folder)
    for runs in folder.glob("runs-*"):
        __import__("shutil").rmtree(runs, ignore_errors=True)


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    (last,) = folder.glob(f"*/checkpoints/iter-{ITERATIONS}.pt")
    return torch.load(last, weights_only=True)["model"]


def initial_weights(folder: Path) -> dict[str, torch.Tensor]:
    from rmi_cli.config import RunConfig
    from rmi_cli.engine.train import build_run

    (config_file,) = folder.glob("runs-one/*/config.json")
    config = RunConfig.model_validate(json.loads(config_file.read_text()))
    return build_run(config, folder / "scratch", torch.device("cpu")).model.state_dict()


def test_two_processes_train_what_one_process_trains(trained: Path) -> None:
    one, two = trained / "one.db", trained / "two.db"
    losses_one = [row[1] for row in metric_rows(one, 1)]
    losses_two = [row[1] for row in metric_rows(two, 1)]
    assert len(losses_one) == len(losses_two) == ITERATIONS  # rank 0 alone reported
    assert losses_two[:3] == pytest.approx(losses_one[:3], rel=1e-5)
    assert losses_two == pytest.approx(losses_one, rel=1e-2)

    start = initial_weights(trained)
    one, two = final_weights(trained / "runs-one"), final_weights(trained / "runs-two")
    names = [n for n, w in start.items() if w.is_floating_point() and "running" not in n]
    step_one = torch.cat([(one[n] - start[n]).double().flatten() for n in names])
    step_two = torch.cat([(two[n] - start[n]).double().flatten() for n in names])
    assert (step_two - step_one).norm() <= 0.1 * step_one.norm()
    assert step_one.norm() > 0


def test_rank_zero_alone_writes_and_the_summary_says_how(trained: Path) -> None:
    summary = query(trained / "two.db", "SELECT world_size, batch_per_rank FROM train_results")
    assert summary == [(2, 2)]
    assert query(trained / "one.db", "SELECT world_size, batch_per_rank FROM train_results") == [
        (1, 4)
    ]
    status = rmi("status", "--run", "tiny/r", "--format", "json", "--db", "two.db", cwd=trained)
    assert status.code == 0, status
    training = json.loads(status.out)["training"]
    assert (training["world_size"], training["batch_per_rank"]) == (2, 2)
    assert (
        "x 2 processes, 2 images each per step"
        in rmi("status", "--run", "tiny/r", "--db", "two.db", cwd=trained).out
    )
    assert sorted(p.name for p in trained.iterdir() if p.suffix == ".db") == ["one.db", "two.db"]


def test_a_batch_that_does_not_divide_is_refused_in_one_line(trained: Path) -> None:
    result = rmi("train", "m.yaml", "-e", "tiny", "--run", "r", "--set", "train.batch_size=5",
                 "--gpus", "0,1", "--db", "three.db", cwd=trained)  # fmt: skip
    assert result.code == 2, result
    assert result.err_lines == [
        "error: --gpus: train.batch_size 5 does not divide among 2 processes; use a batch that "
        "is a multiple of 2 (--set train.batch_size=...) or a number of GPUs that divides 5"
    ]
    assert not (trained / "three.db").exists()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def rank_process(root: int, rank: int) -> int | None:
    """The pid of the training process of `rank` among `root`'s descendants."""
    todo, seen = [root], []
    while todo:
        pid = todo.pop()
        try:
            todo += children(pid)
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and pid != root:
            seen.append(pid)
    return seen[0] if seen else None


def checkpoint(folder: Path, iteration: int) -> list[Path]:
    return list(folder.glob(f"runs/*/checkpoints/iter-{iteration}.pt"))


def test_stopped_then_killed_the_run_resumes_exactly(trained: Path, tmp_path: Path) -> None:
    """One run, three launches: `rmi train --gpus 0,1` (two CPU processes here: no CUDA) gets
    SIGTERM: all ranks stop at one step, rank 0 checkpoints and gives the job back, exit 130.
    `rmi worker --gpus-per-job 2` resumes it; rank 1 is killed with -9: the group ends, the job
    goes back to the queue. The next worker group finishes it: the loss curve is the
    uninterrupted two-process run's, to the last bit."""
    (tmp_path / "m.yaml").write_text((trained / "m.yaml").read_text())
    db = tmp_path / "w.db"
    stopped = start_rmi("train", "m.yaml", "-e", "tiny", "-r", "r", "--gpus", "0,1",
                        "--db", "w.db", cwd=tmp_path, log=tmp_path / "train")  # fmt: skip
    wait_for(lambda: checkpoint(tmp_path, 2), timeout=240, what="checkpoint 2")
    stopped.send_signal(signal.SIGTERM)
    result = finish(stopped, tmp_path / "train", timeout=120)
    assert result.code == 130, result
    assert result.err_lines[-1].startswith("error: interrupted: the 2 data-parallel processes")
    run = runs_table(db)["tiny/r"]
    assert (run["status"], run["attempts"], run["worker"]) == ("queued", 0, None), run
    (last,) = tmp_path.glob("runs/*/checkpoints/last.pt")
    stop_at = torch.load(last, weights_only=True)["iteration"]
    assert 2 <= stop_at <= 3 and len(metric_rows(db, run["id"])) == stop_at

    killed = start_rmi("worker", "--gpus-per-job", "2", "--db", "w.db", cwd=tmp_path,
                       log=tmp_path / "killed")  # fmt: skip
    wait_for(lambda: checkpoint(tmp_path, stop_at + 1), timeout=240, what="a new checkpoint")
    os.kill(wait_for(lambda: rank_process(killed.pid, 1), timeout=10, what="rank 1"), SIGKILL)
    result = finish(killed, tmp_path / "killed", timeout=120)
    assert result.code == 1, result
    assert "data-parallel processes exited with code 1" in result.err, result
    run = runs_table(db)["tiny/r"]
    assert (run["status"], run["attempts"]) == ("queued", 1), run
    assert "data-parallel process failed or left" in run["error"]
    assert rank_process(killed.pid, 0) is None  # nothing of the group is left

    done = rmi("worker", "--gpus-per-job", "2", "--db", "w.db", cwd=tmp_path, timeout=300)
    assert done.code == 0, done
    run = runs_table(db)["tiny/r"]
    assert (run["status"], run["attempts"], run["error"]) == ("done", 2, None)
    (resumed_from,) = query(db, "SELECT resumed_from FROM train_results")[0]
    assert resumed_from >= stop_at + 1
    assert metric_rows(db, run["id"]) == metric_rows(trained / "two.db", 1)
    remove_run_folders(tmp_path)
