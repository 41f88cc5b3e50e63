"""Store every record type, reopen the database, read it back as report rows."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from db_samples import (
    crf_result,
    crf_spec,
    eval_result,
    fingerprint,
    image_counts,
    metrics,
    timing,
    train_result,
    train_spec,
)
from sqlalchemy import func, select, update

from rmi_cli.db import (
    Database,
    claim,
    enqueue,
    enqueue_experiment,
    evaluation_rows,
    experiment_names,
    metrics_rows,
    open_database,
    run_rows,
    store_crf,
    store_evaluation,
    store_metrics,
    store_train_result,
    throughput_rows,
)
from rmi_cli.db.schema import (
    ClassIoU,
    Environment,
    Evaluation,
    ImageEvidence,
    Run,
    TrainSummary,
)
from rmi_cli.errors import DatabaseError
from rmi_cli.stored import EvaluationRecord, MetricsRecord, RunRecord, ThroughputRecord

ROW_KEYS = {
    "experiment", "run", "run_id", "config_hash", "seed", "method", "group", "model", "backbone",
    "loss", "params", "split", "postprocess", "miou", "pixel_accuracy", "mean_accuracy",
    "num_images", "class_iou", "inference_median_ms", "inference_p90_ms", "crf_median_ms",
    "total_median_ms", "peak_train_memory_mb", "peak_eval_memory_mb", "protocol", "device",
    "torch", "status", "dataset", "pretrained", "from_scratch", "void", "boundary_miou",
    "class_boundary_iou", "image_counts", "crf_params", "environment", "evaluated_at",
}  # fmt: skip


def plain(records: list, kind: type) -> list[dict]:
    """The records as dicts, after checking that they are the typed records of the contract."""
    assert all(type(record) is kind for record in records)
    return [asdict(record) for record in records]


def count(db: Database, model: type) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def queued(db: Database) -> tuple[int, int]:
    """A train run and its CRF job in experiment "e"; their run ids."""
    train = train_spec(7)
    report = enqueue_experiment(db, "e", [train, crf_spec(train)])
    return report.jobs[0][1].run_id, report.jobs[1][1].run_id


def test_train_result_round_trip_and_replacement(db: Database, db_path: Path, queued) -> None:
    train_id, _ = queued
    store_train_result(db, train_id, train_result())
    store_train_result(db, train_id, train_result(resumed_from=3, final_loss=0.125))
    db.close()
    with open_database(str(db_path), create=False) as again, again.session() as session:
        run = session.get(Run, train_id)
        summary = session.get(TrainSummary, train_id)
        environment = session.get(Environment, run.environment_id)
        assert run.checkpoint_path == summary.checkpoint_path == "/runs/x/checkpoints/last.pt"
        assert (summary.final_loss, summary.resumed_from, summary.iterations) == (0.125, 3, 5)
        assert (summary.peak_train_memory_mb, summary.rmi_fallbacks) == (512.0, 1)
        assert summary.environment_id == environment.id
        assert (environment.device, environment.git_commit) == ("cpu", "abc123+dirty")
        assert session.scalar(select(func.count()).select_from(TrainSummary)) == 1
        assert session.scalar(select(func.count()).select_from(Environment)) == 1
    with open_database(str(db_path), create=False) as again:
        (row,) = plain(throughput_rows(again), ThroughputRecord)
    assert (row["run_id"], row["images_per_s"], row["device"]) == (train_id, 40.0, "cpu")
    assert row["config"]["seed"] == 7


def test_metrics_upsert_on_resume(db: Database, db_path: Path, queued) -> None:
    train_id, _ = queued
    assert store_metrics(db, train_id, metrics(range(1, 6))) == 5
    store_metrics(db, train_id, metrics(range(4, 9), loss=2.0))  # resumed from iteration 3
    db.close()
    with open_database(str(db_path)) as again:
        rows = plain(metrics_rows(again, train_id), MetricsRecord)
    assert [r["iteration"] for r in rows] == list(range(1, 9))
    assert rows[2]["loss"] == pytest.approx(1.0 / 3)
    assert rows[3]["loss"] == pytest.approx(2.0 / 4)
    assert set(rows[0]) == {
        "iteration", "loss", "lr", "images_per_s", "elapsed_s", "rmi_fallbacks", "extra"
    }  # fmt: skip


def test_evaluation_round_trip_and_re_evaluation(db: Database, db_path: Path, queued) -> None:
    train_id, _ = queued
    store_train_result(db, train_id, train_result())
    store_evaluation(db, train_id, eval_result(miou=0.5))
    store_evaluation(db, train_id, eval_result(miou=0.625))  # re-evaluating replaces
    db.close()
    with open_database(str(db_path)) as again:
        rows = plain(evaluation_rows(again, experiment="e"), EvaluationRecord)
        assert count(again, Evaluation) == 1
        assert count(again, ClassIoU) == 3
    (row,) = rows
    assert set(row) == ROW_KEYS
    assert row["class_iou"] == {"road": 0.5, "sky": None, "car": 0.75}
    assert list(row["class_iou"]) == ["road", "sky", "car"]
    assert (row["experiment"], row["run"], row["seed"]) == ("e", train_spec(7).name, 7)
    assert (row["method"], row["group"], row["params"]) == ("RMI", "DeepLabv3", {"loss.radius": 3})
    assert (row["model"], row["backbone"], row["loss"]) == ("deeplabv3", "resnet101", "rmi")
    # how the run was trained, from its configuration: tables mark runs from scratch
    assert (row["dataset"], row["pretrained"], row["void"]) == ("synthetic", None, "ignore")
    assert row["from_scratch"]
    assert (row["split"], row["postprocess"], row["miou"]) == ("val", "none", 0.625)
    assert (row["inference_median_ms"], row["total_median_ms"], row["crf_median_ms"]) == (
        12.5,
        12.5,
        None,
    )
    assert row["protocol"] == asdict(timing())
    assert (row["peak_train_memory_mb"], row["peak_eval_memory_mb"]) == (512.0, 256.0)
    assert (row["device"], row["torch"], row["status"]) == ("cpu", "2.5.0", "queued")
    assert row["environment"] == fingerprint().to_dict()
    assert row["boundary_miou"] == 0.375
    assert row["class_boundary_iou"] == {"road": 0.25, "sky": None, "car": 0.5}
    assert row["image_counts"]["names"] == image_counts().names  # asdict: a dict here
    np.testing.assert_array_equal(row["image_counts"]["counts"], image_counts().counts)
    assert row["image_counts"]["boundary_fraction"] == 0.02


def test_per_image_counts_are_one_blob_replaced_with_their_evaluation(db: Database, queued) -> None:
    train_id, crf_id = queued
    store_evaluation(db, train_id, eval_result(miou=0.5))
    store_evaluation(db, train_id, eval_result(miou=0.625))
    store_crf(db, crf_id, crf_result(5))
    assert count(db, ImageEvidence) == 2
    with db.session() as session:
        blob = session.scalars(select(ImageEvidence.counts)).first()
    assert len(blob) < image_counts().counts.nbytes  # compressed
    rows = evaluation_rows(db, experiment="e")
    crf = next(r for r in rows if r.postprocess == "crf-5")
    assert crf.image_counts is not None
    np.testing.assert_array_equal(crf.image_counts.counts, image_counts(seed=5).counts)


def test_evaluations_stored_without_counts_read_as_none(db: Database, queued) -> None:
    train_id, _ = queued
    store_evaluation(db, train_id, eval_result(counts=False))
    (row,) = evaluation_rows(db, experiment="e")
    assert row.image_counts is None
    assert count(db, ImageEvidence) == 0


def test_damaged_counts_are_one_line_naming_the_evaluation(db: Database, queued) -> None:
    train_id, _ = queued
    store_evaluation(db, train_id, eval_result())
    with db.session(write=True) as session:
        session.execute(update(ImageEvidence).values(counts=b"not zlib"))
    with pytest.raises(DatabaseError, match=r"evaluation \d+ of run .*: the per-image counts are "
                       r"damaged .*run `rmi eval`"):  # fmt: skip
        evaluation_rows(db, experiment="e")


def test_crf_rows_add_network_and_crf_time(db: Database, queued) -> None:
    train_id, crf_id = queued
    store_evaluation(db, train_id, eval_result(median_ms=10.0))
    store_crf(db, crf_id, crf_result(5))  # network time from the train run's evaluation
    store_crf(db, crf_id, crf_result(10), network_timing=timing(20.0))
    store_crf(db, train_id, crf_result(1))  # post-processing stored on the train run itself
    rows = plain(evaluation_rows(db, experiment="e", split="val"), EvaluationRecord)
    assert [(r["run_id"], r["postprocess"]) for r in rows] == [
        (train_id, "none"),
        (train_id, "crf-1"),
        (crf_id, "crf-5"),
        (crf_id, "crf-10"),
    ]
    crf5, crf10 = rows[2], rows[3]
    assert (crf5["crf_median_ms"], crf5["inference_median_ms"], crf5["total_median_ms"]) == (
        30.0,
        10.0,
        40.0,
    )
    # Rows read the network time the run's evaluation has now, so that a CRF row's time is
    # always its CE row's time plus the CRF's (the 20 ms measured on the way is history).
    assert crf10["total_median_ms"] == 40.0
    assert (crf5["model"], crf5["seed"], crf5["method"]) == ("deeplabv3", 7, "RMI + CRF")
    assert evaluation_rows(db, experiment="e", split="test") == []
    # Evaluated again (a quieter machine, another card): the CRF rows follow.
    store_evaluation(db, train_id, eval_result(median_ms=8.0))
    rows = plain(evaluation_rows(db, experiment="e", split="val"), EvaluationRecord)
    assert [r["total_median_ms"] for r in rows[2:]] == [38.0, 38.0]
    assert rows[2]["inference_median_ms"] == 8.0


def test_crf_without_any_network_time(db: Database, queued) -> None:
    _, crf_id = queued
    store_crf(db, crf_id, crf_result(5))
    (row,) = plain(evaluation_rows(db, experiment="e"), EvaluationRecord)
    assert (row["total_median_ms"], row["inference_median_ms"]) == (None, None)


def test_environments_are_stored_once_per_fingerprint(db: Database, queued) -> None:
    train_id, crf_id = queued
    store_train_result(db, train_id, train_result())
    store_evaluation(db, train_id, eval_result())
    store_crf(db, crf_id, replace(crf_result(), fingerprint=fingerprint("NVIDIA H100")))
    assert count(db, Environment) == 2


def test_percentages_are_refused(db: Database, queued) -> None:
    train_id, _ = queued
    result = eval_result()
    bad = replace(result, scores=replace(result.scores, miou=62.5))
    with pytest.raises(ValueError, match=r"miou must be a fraction in \[0, 1\]; got 62.5"):
        store_evaluation(db, train_id, bad)
    assert count(db, Evaluation) == 0


def test_unknown_run_and_experiment(db: Database, db_path: Path, queued) -> None:
    with pytest.raises(DatabaseError) as caught:
        store_evaluation(db, 999, eval_result())
    assert str(caught.value) == f"{db_path}: no run with id 999; `rmi status` lists the runs"
    with pytest.raises(DatabaseError) as caught:
        evaluation_rows(db, experiment="typo")
    assert str(caught.value) == (
        f"{db_path}: no experiment 'typo' in the database (it has: e); queue it with `rmi ablate`"
    )
    assert experiment_names(db) == ["e"]


def test_run_rows_show_stale_jobs_and_orphans(db: Database, queued) -> None:
    train_id, crf_id = queued
    orphan = enqueue(db, train_spec(99)).run_id
    job = claim(db, worker="gone", lease_s=0.0, run_ids=[train_id])
    assert job is not None
    time.sleep(0.01)
    rows = {r["run_id"]: r for r in plain(run_rows(db), RunRecord)}
    assert rows[train_id]["stale"] and rows[train_id]["worker"] == "gone"
    assert rows[train_id]["heartbeat_age_s"] > 0
    assert (rows[crf_id]["name"], rows[crf_id]["depends_on"]) == (
        f"{train_spec(7).name}+crf",
        train_spec(7).config_hash,
    )
    assert (rows[orphan]["experiment"], rows[orphan]["name"]) == (None, train_spec(99).config_hash)
    assert [r.run_id for r in run_rows(db, experiment="e")] == [train_id, crf_id]
    # a CRF job reports how the run it post-processes was trained
    assert (rows[crf_id]["dataset"], rows[crf_id]["pretrained"]) == ("synthetic", None)
    assert rows[crf_id]["from_scratch"] and rows[train_id]["from_scratch"]
    assert rows[crf_id]["void"] == rows[train_id]["void"] == "ignore"
