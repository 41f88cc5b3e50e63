"""Helpers for the CLI tests: the tiny manifest, running `rmi` as a subprocess, reading the
SQLite file back with plain sqlite3 (not through the code under test), and made-up results
stored through `rmi_cli.db` the way a worker stores them (for tables that need no training)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rmi_cli.db import claim, complete, open_database, store_crf, store_evaluation
from rmi_cli.iou import class_iou, mean_iou
from rmi_cli.records import (
    CRFResult,
    EvalResult,
    Fingerprint,
    ImageCounts,
    InferenceTiming,
    SegmentationScores,
)

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "tiny"

# Two losses and a CRF step on 32x48 synthetic scenes: a whole `rmi ablate` in seconds. Only
# the final checkpoint is written (checkpoint_every > iterations): each one is ~120 MB.
TINY_MANIFEST = """\
version: 1
experiments:
  tiny:
    description: CE and RMI on tiny synthetic scenes, and a dense CRF on CE.
    defaults:
      model: {name: deeplabv3, backbone: resnet18, output_stride: 16}
      data:
        name: synthetic
        synthetic: {height: 32, width: 48, train_images: 4, val_images: 3, test_images: 2}
        crop_size: 32
        workers: 0
      train: {iterations: 3, batch_size: 2, lr: 0.01, warmup_iters: 1, device: cpu,
              checkpoint_every: 100, log_every: 1}
      eval: {warmup_images: 1}
    runs:
      ce: {loss: {name: ce}}
      rmi: {loss: {name: rmi, pool: avg, pool_size: 2, radius: 2}}
    crf: {on: ce, iters: [1]}
    tables:
      - {kind: methods}
      - {kind: per-class}
"""


@dataclass(frozen=True)
class Result:
    """What one `rmi` command did."""

    code: int
    out: str
    err: str

    def __str__(self) -> str:  # the assertion message: everything the user would have seen
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


# The `rmi` fixture: `rmi("table", "-e", "tiny")` runs the command in-process.
Rmi = Callable[..., Result]


@dataclass(frozen=True)
class Workspace:
    """A folder holding a manifest, a database and (beside it) its runs/ folder."""

    root: Path
    manifest: Path
    db: Path

    @property
    def runs(self) -> Path:
        return self.root / "runs"


def copy_workspace(source: Workspace, target: Path) -> Workspace:
    """A private copy: the database copied, the run folders hard-linked (checkpoints are large;
    every writer in rmi replaces files by renaming, so the originals are never changed)."""
    wal = source.db.with_name(f"{source.db.name}-wal")
    # Commits still in the WAL would be lost by copying the main file alone: every command
    # closes its database, which folds the WAL back in.
    assert not wal.exists() or wal.stat().st_size == 0, f"{wal} is not empty"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source.manifest, target / source.manifest.name)
    shutil.copy2(source.db, target / source.db.name)
    if source.runs.is_dir():
        shutil.copytree(source.runs, target / "runs", copy_function=os.link)
    return Workspace(target, target / source.manifest.name, target / source.db.name)


def subprocess_rmi(*args: str, cwd: Path, timeout: float = 120) -> Result:
    """`python -m rmi_cli ARGS` as a user runs it: a new process, pipes (not a terminal)."""
    env = {k: v for k, v in os.environ.items() if k not in ("RMI_DB", "RMI_RUNS_DIR")}
    done = subprocess.run(
        [sys.executable, "-m", "rmi_cli", *args],
        cwd=cwd,
        env=env | {"NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of `sql` on the SQLite file, read with the standard library."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def count(db: Path, table: str) -> int:
    return query(db, f"SELECT count(*) FROM {table}")[0][0]


def counts(db: Path) -> dict[str, int]:
    """Rows per table: the database's state in a form a failing assertion prints readably."""
    tables = [
        name
        for (name,) in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_")
    ]
    return {table: count(db, table) for table in sorted(tables)}


def run_statuses(db: Path) -> dict[str, str]:
    """Membership name -> run status, e.g. {"ce": "done", "ce+crf": "done"}."""
    rows = query(
        db,
        "SELECT m.name, r.status FROM experiment_runs m JOIN runs r ON r.id = m.run_id "
        "ORDER BY m.name",
    )
    return dict(rows)


def single_line_error(result: Result) -> str:
    """The one `error: ...` line of a failed command; asserts there is nothing else."""
    assert "Traceback" not in result.err, str(result)
    lines = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, str(result)
    return lines[0].removeprefix("error: ")


# --- a database shaped like the paper's experiments, with made-up results ------------------

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


def _fraction(*keys: object) -> float:
    """A made-up but repeatable score in [0.5, 0.9) for these keys."""
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return 0.5 + 0.4 * int.from_bytes(digest[:4], "big") / 2**32


MADE_UP_IMAGES = 40  # per-image counts of this many images (the tables' intervals need them)


def _scores(key: str) -> tuple[SegmentationScores, ImageCounts]:
    """Scores and per-image counts that agree: each class's summed intersection over its
    summed union is its IoU (to rounding), the images scattered around it."""
    target = np.array([_fraction(key, name) for name in VOC_CLASSES])
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big"))
    union = rng.integers(2_000, 20_000, size=(MADE_UP_IMAGES, len(VOC_CLASSES)))
    spread = np.clip(target + rng.normal(0.0, 0.08, union.shape), 0.0, 1.0)
    inter = np.round(spread * union).astype(np.int64)
    inter = np.round(inter * (target * union.sum(0) / inter.sum(0))).astype(np.int64)
    inter = np.minimum(inter, union)
    counts = np.stack([inter, union, inter // 3, union // 2], axis=1)
    iou = tuple(float(v) for v in class_iou(inter.sum(0), union.sum(0)))
    boundary = tuple(float(v) for v in class_iou(counts[:, 2].sum(0), counts[:, 3].sum(0)))
    scores = SegmentationScores(
        class_names=VOC_CLASSES,
        iou=iou,
        miou=float(mean_iou(inter.sum(0), union.sum(0))),
        pixel_accuracy=0.93,
        mean_accuracy=0.85,
        confusion=(),
        boundary_iou=boundary,
        boundary_miou=float(np.mean(boundary)),
    )
    names = tuple(f"2007_{i:06d}" for i in range(MADE_UP_IMAGES))
    return scores, ImageCounts(names, counts, 0.02)


FINGERPRINT = Fingerprint(
    hostname="gpu-box", platform="Linux", python="3.11", torch="2.5", torchvision="0.20",
    device="NVIDIA H100 80GB HBM3", num_threads=16,
)  # fmt: skip
TIMING = InferenceTiming(
    median_ms=21.0, p90_ms=23.0, mean_ms=21.5, images=1449, warmup_images=10, batch_size=1,
    input_size="variable (max 500x500)", device="cuda", precision="bf16",
    protocol="batch 1, bf16, forward pass only",
)  # fmt: skip


def fill_with_made_up_results(db_path: Path, *, limit: int | None = None) -> None:
    """Claim every queued job (the first `limit`) and store VOC-val results for it, as a
    worker would."""
    with open_database(str(db_path)) as db:
        done = 0
        while (limit is None or done < limit) and (job := claim(db, worker="test:1")):
            done += 1
            if job.kind == "train":
                scores, counts = _scores(job.config_hash)
                evaluation = EvalResult("val", MADE_UP_IMAGES, scores, TIMING, 900.0, None,
                                        FINGERPRINT, counts)  # fmt: skip
                store_evaluation(db, job.id, evaluation)
            else:
                for iterations in job.config["crf"]["iters"]:
                    scores, counts = _scores(f"{job.config_hash}-{iterations}")
                    crf = CRFResult("val", iterations, MADE_UP_IMAGES, scores, 300.0, 320.0, 16,
                                    {}, FINGERPRINT, counts)  # fmt: skip
                    store_crf(db, job.id, crf)
            assert complete(db, job.id, "test:1")
