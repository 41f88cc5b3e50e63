"""Helpers for the reliability tests: real `rmi` processes, tiny manifests, database reads.

Every process runs with one CPU thread (OMP_NUM_THREADS=1): CPU results are bit-exact only at
the same thread count, and on shared cores OpenMP's spinning threads slow tiny runs down.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def rmi_command() -> list[str]:
    """The installed `rmi` console script beside this Python, else `python -m rmi_cli`."""
    script = Path(sys.executable).with_name("rmi")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rmi_cli"]


def rmi_env(**extra: str) -> dict[str, str]:
    """The environment of every `rmi` process: one thread, no colour, no inherited database."""
    env = {k: v for k, v in os.environ.items() if k not in ("RMI_DB", "RMI_RUNS_DIR")}
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    return env | extra


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def __str__(self) -> str:  # the assertion message
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def rmi(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    preexec_fn: Callable[[], None] | None = None,
) -> Result:
    """Run `rmi ARGS` to the end."""
    done = subprocess.run(
        [*rmi_command(), *args],
        cwd=cwd,
        env=env or rmi_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
    return Result(done.returncode, done.stdout, done.stderr)


_STARTED: list[subprocess.Popen[bytes]] = []


def start_rmi(
    *args: str, cwd: Path, log: Path, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """Start `rmi ARGS` in the background, stdout and stderr into `log`.<out|err>; with
    `new_session`, as the leader of its own process group (a terminal's foreground job)."""
    # Files rather than pipes: a pipe nobody reads would block a chatty worker.
    with Path(f"{log}.out").open("wb") as out, Path(f"{log}.err").open("wb") as err:
        process = subprocess.Popen(
            [*rmi_command(), *args], cwd=cwd, env=rmi_env(), stdout=out, stderr=err,
            start_new_session=new_session,
        )  # fmt: skip
    _STARTED.append(process)
    return process


def kill_leftovers() -> None:
    """SIGKILL what `start_rmi` started and still runs (or is stopped): a test failed midway."""
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def finish(process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> Result:
    """Wait for a process started by `start_rmi` and read its output."""
    process.wait(timeout=timeout)
    out = Path(f"{log}.out").read_text()
    err = Path(f"{log}.err").read_text()
    return Result(process.returncode, out, err)


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, poll: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- manifests --------------------------------------------------------------------------------


def manifest(
    runs: dict[str, str],
    *,
    name: str = "tiny",
    size: tuple[int, int] = (16, 16),
    crop: int = 16,
    train: str = "iterations: 1, checkpoint_every: 1, log_every: 1",
    data: str = "",
    seeds: Sequence[int] = (),
) -> str:
    """A manifest with one experiment of DeepLabv3-ResNet18 runs on tiny synthetic scenes on
    the CPU; `runs` maps run names to their YAML flow mappings (`{loss: {name: ce}}`)."""
    height, width = size
    data = data or (
        f"{{name: synthetic, synthetic: {{height: {height}, width: {width}, train_images: 4, "
        f"val_images: 1, test_images: 1}}, crop_size: {crop}, workers: 0}}"
    )
    lines = [
        "version: 1",
        "experiments:",
        f"  {name}:",
        "    defaults:",
        "      model: {name: deeplabv3, backbone: resnet18}",
        f"      data: {data}",
        f"      train: {{batch_size: 2, lr: 0.01, device: cpu, {train}}}",
        "      eval: {warmup_images: 0}",
        "    runs:",
        *(f"      {run}: {body}" for run, body in runs.items()),
    ]
    if seeds:
        lines.append(f"    seeds: [{', '.join(map(str, seeds))}]")
    return "\n".join(lines) + "\n"


# --- a folder dataset -------------------------------------------------------------------------

FOLDER_CLASSES = ("road", "car", "sky")


def write_folder_dataset(root: Path, *, size: int = 16) -> Path:
    """A valid `folder` dataset: 3 classes, train a b, val c."""
    for index, stem in enumerate("abc"):
        write_png(root / "images" / f"{stem}.png", _pixels(size, size, seed=index))
        label = (np.arange(size * size).reshape(size, size) % len(FOLDER_CLASSES)).astype(np.uint8)
        write_png(root / "labels" / f"{stem}.png", label)
    (root / "classes.txt").write_text("\n".join(FOLDER_CLASSES) + "\n")
    (root / "train.txt").write_text("a\nb\n")
    (root / "val.txt").write_text("c\n")
    return root


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode="L" if pixels.ndim == 2 else "RGB").save(path)


def _pixels(height: int, width: int, *, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- the database, read directly --------------------------------------------------------------


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query (plain sqlite3, independent of the code under test). Not `mode=ro`: a
    read-only connection leaves the -wal and -shm files behind when it closes."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def runs_table(db: Path) -> dict[str, dict[str, Any]]:
    """The `runs` rows by "experiment/name"."""
    rows = query(
        db,
        "SELECT e.name || '/' || m.name, r.id, r.status, r.attempts, r.worker, r.error, "
        "r.config_hash FROM runs r JOIN experiment_runs m ON m.run_id = r.id "
        "JOIN experiments e ON e.id = m.experiment_id ORDER BY r.id",
    )
    keys = ("id", "status", "attempts", "worker", "error", "config_hash")
    return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in rows}


def metric_rows(db: Path, run_id: int) -> list[tuple[Any, ...]]:
    """What must agree between two runs of one configuration (timings differ naturally)."""
    return query(
        db,
        "SELECT iteration, loss, lr, rmi_fallbacks FROM train_metrics WHERE run_id = ? "
        "ORDER BY iteration",
        (run_id,),
    )


def status_json(db: Path, cwd: Path) -> tuple[list[dict[str, Any]], Result]:
    """`rmi status --format json`: its rows, and the result (counts are on stderr)."""
    result = rmi("status", "--db", str(db), "--format", "json", cwd=cwd)
    assert result.code == 0, result
    return json.loads(result.out), result


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def remove_run_folders(folder: Path) -> None:
    """Checkpoints are ~120 MB each (ResNet-18 DeepLabv3 + momentum): do not leave them in
    pytest's kept temporary folders."""
    for runs in folder.rglob("runs"):
        if runs.is_dir():
            shutil.rmtree(runs, ignore_errors=True)


# --- read-only files for root -----------------------------------------------------------------


def drop_file_capabilities() -> None:
    """preexec_fn: make chmod bind a root child (the technique of tests/db/test_session.py).

    Root ignores file permissions through CAP_DAC_OVERRIDE (and CAP_DAC_READ_SEARCH,
    CAP_FOWNER); dropped from the bounding set before exec, the child's file accesses are
    checked like anyone's.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2, 3):  # DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
