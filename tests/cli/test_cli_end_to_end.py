"""A whole experiment through `rmi ablate` (train, evaluate, CRF), then the database reopened and
its rows checked, and `rmi` run as a separate process the way a user runs it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cli_kit import EXPERIMENT, Result, Rmi, Workspace, query, run_statuses, subprocess_rmi

from rmi_cli.data.scenes import CLASS_NAMES


def test_ablate_trains_evaluates_and_post_processes(
    trained_ablate: tuple[Workspace, Result],
) -> None:
    space, result = trained_ablate
    assert result.code == 0, str(result)
    assert result.out == "", "ablate prints progress only, on stderr"
    assert "tiny: 3 queued, 0 re-queued, 0 already done" in result.err
    assert "tiny/ce: val mIoU" in result.err
    assert "tiny/ce+crf: CRF-1 mIoU" in result.err
    assert "tiny: 0 queued, 0 running, 3 done, 0 failed" in result.err
    assert run_statuses(space.db) == {"ce": "done", "ce+crf": "done", "rmi": "done"}
    jobs = query(space.db, "SELECT kind, attempts, error, worker IS NOT NULL FROM runs")
    assert sorted(jobs) == [("crf", 1, None, 1), ("train", 1, None, 1), ("train", 1, None, 1)]
    assert query(space.db, "SELECT name, description FROM experiments") == [
        (EXPERIMENT, "CE and RMI on tiny synthetic scenes, and a dense CRF on CE.")
    ]


def _run_id(db: Path, name: str) -> int:
    (row,) = query(db, "SELECT run_id FROM experiment_runs WHERE name = ?", name)
    return row[0]


def test_training_is_stored_with_metrics_and_checkpoints(trained: Workspace) -> None:
    for name in ("ce", "rmi"):
        run_id = _run_id(trained.db, name)
        metrics = query(
            trained.db,
            "SELECT iteration, loss > 0, lr > 0 FROM train_metrics WHERE run_id = ? "
            "ORDER BY iteration",
            run_id,
        )
        assert metrics == [(1, 1, 1), (2, 1, 1), (3, 1, 1)], name
        ((iterations, checkpoint, images_per_s),) = query(
            trained.db,
            "SELECT iterations, checkpoint_path, images_per_s FROM train_results WHERE run_id = ?",
            run_id,
        )
        assert iterations == 3 and images_per_s > 0
        checkpoint = Path(checkpoint)
        assert checkpoint.is_file() and checkpoint.name == "iter-3.pt"
        ((config_hash,),) = query(trained.db, "SELECT config_hash FROM runs WHERE id = ?", run_id)
        workdir = trained.runs / config_hash
        assert checkpoint.parent == workdir / "checkpoints"
        assert (workdir / "checkpoints" / "last.pt").is_file()
        config = json.loads((workdir / "config.json").read_text())
        assert config["loss"]["name"] == name and config["train"]["iterations"] == 3
    # The CE run feeds the CRF step, so its evaluation kept the probabilities; RMI's did not.
    probs = {
        name: sorted(p.name for p in trained.runs.glob(f"{h}/probs/val/*.npy"))
        for name, h in query(
            trained.db,
            "SELECT m.name, r.config_hash FROM experiment_runs m JOIN runs r ON r.id = m.run_id "
            "WHERE r.kind = 'train'",
        )
    }
    assert probs == {"ce": ["val_00000.npy", "val_00001.npy", "val_00002.npy"], "rmi": []}


def test_evaluations_have_per_class_iou_and_crf_times(trained: Workspace) -> None:
    rows = query(
        trained.db,
        "SELECT m.name, e.id, e.split, e.postprocess, e.num_images, e.miou, "
        "e.inference_median_ms, e.crf_median_ms, e.total_median_ms "
        "FROM evaluations e JOIN experiment_runs m ON m.run_id = e.run_id ORDER BY m.name",
    )
    assert [row[0] for row in rows] == ["ce", "ce+crf", "rmi"]
    for name, evaluation_id, split, postprocess, images, miou, network_ms, crf_ms, total_ms in rows:
        assert (split, images) == ("val", 3)
        assert 0.0 <= miou <= 1.0
        assert network_ms > 0
        classes = query(
            trained.db,
            "SELECT class_name FROM class_iou WHERE evaluation_id = ? ORDER BY class_index",
            evaluation_id,
        )
        assert tuple(c for (c,) in classes) == CLASS_NAMES
        if name == "ce+crf":
            assert postprocess == "crf-1"
            assert crf_ms > 0
            assert total_ms == pytest.approx(network_ms + crf_ms)
        else:
            assert postprocess == "none"
            assert crf_ms is None and total_ms == pytest.approx(network_ms)


def test_table_prints_table_1_with_the_crf_row(trained: Workspace, rmi: Rmi) -> None:
    result = rmi(
        "table", "-e", EXPERIMENT, "--kind", "methods", "-f", "markdown", "--db", trained.db
    )
    assert result.code == 0, str(result)
    assert result.err == ""
    lines = result.out.splitlines()
    assert lines[0] == "**tiny: methods on val**"
    header = (
        "| Group | Method | n | Inf. time (ms) | +CRF (ms) | mIoU (%, 10 classes) "
        "| Δ vs CE [95% CI] |"
    )
    assert header in lines
    # the tiny runs start from random weights: every row says so
    body = [line.split(" | ")[:2] for line in lines if line.startswith("| DeepLabv3 ")]
    assert {group for group, _ in body} == {"| DeepLabv3 (from scratch)"}
    scratch = [f"{label} (from scratch)" for label in ("CE", "CE & CRF-1", "RMI")]
    assert [method for _, method in body] == scratch


def test_rich_tables_by_default(trained: Workspace, rmi: Rmi) -> None:
    result = rmi("table", "-e", EXPERIMENT, "--db", trained.db)
    assert result.code == 0, str(result)
    assert "tiny: methods on val" in result.out
    assert "tiny: per-class IoU on val" in result.out
    assert "CE & CRF-1" in result.out
    assert "│ sky" not in result.out and " sky " in result.out  # classes are columns


def test_subprocess_csv_is_data_only(trained: Workspace) -> None:
    args = ("table", "-e", EXPERIMENT, "--kind", "methods", "--format", "csv")
    result = subprocess_rmi(*args, "--db", str(trained.db), cwd=trained.root)
    assert result.code == 0, str(result)
    assert result.err == ""
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [row["label"] for row in rows] == [
        f"{m} (from scratch)" for m in ("CE", "CE & CRF-1", "RMI")
    ]
    assert all(row["source"] == "ours" and float(row["miou"]) >= 0 for row in rows)
    assert all(len(line.split(",")) == len(rows[0]) for line in result.out.splitlines())


def test_subprocess_error_is_one_line_and_exit_2(trained: Workspace) -> None:
    result = subprocess_rmi("status", "--run", "nope", "--db", str(trained.db), cwd=trained.root)
    assert result.code == 2, str(result)
    assert result.out == ""
    assert result.err == f"error: no run 'nope' in {trained.db}; `rmi status` lists the runs\n"


def test_python_dash_m_help(tmp_path: Path) -> None:
    result = subprocess_rmi("--help", cwd=tmp_path)
    assert result.code == 0, str(result)
    assert "Usage: rmi [OPTIONS] COMMAND [ARGS]..." in result.out
    for command in ("ablate", "crf", "db", "demo", "eval", "status", "table", "train", "worker"):
        assert f" {command} " in result.out, command
    assert not list(tmp_path.iterdir()), "--help creates no database"
