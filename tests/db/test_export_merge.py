"""Results files: export an experiment, merge it into another database (SQLite and PostgreSQL),
idempotently, all or nothing, with conflicts refused in one line naming the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from db_samples import (
    crf_result,
    crf_spec,
    eval_result,
    image_counts,
    metrics,
    train_result,
    train_spec,
)

from rmi_cli.db import (
    Database,
    ExperimentInfo,
    claim,
    complete,
    enqueue_experiment,
    evaluation_rows,
    open_database,
    status_counts,
    store_crf,
    store_evaluation,
    store_metrics,
    store_train_result,
)
from rmi_cli.db.export import export_experiment
from rmi_cli.db.merge import merge_results
from rmi_cli.db.portable import ResultsFile, read_results, write_results
from rmi_cli.errors import UserError

TABLES = [{"kind": "ablation", "rows": "loss.radius", "cols": "seed"}]
SPECS = [train_spec(0), train_spec(1), train_spec(2)]
SPECS.append(crf_spec(SPECS[0]))


def queue(db: Database, name: str = "grid") -> None:
    enqueue_experiment(db, name, SPECS, about=ExperimentInfo("d", "m.yaml", TABLES))


def finish_all(db: Database, *, loss: float = 0.25, upto: int = 4) -> None:
    """Claim and finish the first `upto` jobs (train runs first) with sample results."""
    for _ in range(upto):
        job = claim(db, worker="node:1")
        assert job is not None
        if job.kind == "crf":
            store_crf(db, job.id, crf_result(5))
        else:
            store_train_result(db, job.id, train_result(final_loss=loss, world_size=2))
            store_metrics(db, job.id, metrics(range(1, 4)))
            store_evaluation(db, job.id, eval_result())
        assert complete(db, job.id, "node:1")


def export(db: Database, path: Path, name: str = "grid") -> ResultsFile:
    write_results(export_experiment(db, name), path)
    return read_results(path)


def content(document: ResultsFile) -> dict:
    """What must survive a round trip (not when or from where it was exported)."""
    return document.model_dump(mode="json", include={"experiments", "environments", "runs"})


@pytest.fixture
def node(tmp_path: Path) -> Database:
    """A node's own SQLite database: the experiment queued and everything run."""
    with open_database(str(tmp_path / "node.db")) as db:
        queue(db)
        finish_all(db)
        yield db


def test_export_then_merge_into_an_empty_database_copies_everything(
    node: Database, any_db: Database, tmp_path: Path
) -> None:
    sent = export(node, tmp_path / "grid.rmi.json")
    assert [run.status for run in sent.runs] == ["done"] * 4
    assert sent.runs[0].train is not None and sent.runs[0].train.world_size == 2

    report = merge_results(any_db, [(tmp_path / "grid.rmi.json", sent)])
    assert (len(report.added), report.completed, report.unchanged) == (4, [], [])
    assert content(export(any_db, tmp_path / "back.json")) == content(sent)
    assert status_counts(any_db)["done"] == 4
    # the per-image counts and the boundary IoU travel too (the tables' intervals need them)
    assert sent.runs[0].evaluations[0].image_counts is not None
    row = evaluation_rows(any_db, experiment="grid")[0]
    assert row.boundary_miou == 0.375 and row.image_counts is not None
    np.testing.assert_array_equal(row.image_counts.counts, image_counts().counts)


def test_merging_the_same_file_again_changes_nothing(
    node: Database, any_db: Database, tmp_path: Path
) -> None:
    sent = export(node, tmp_path / "grid.rmi.json")
    merge_results(any_db, [(tmp_path / "a", sent)])
    before = content(export(any_db, tmp_path / "before.json"))
    report = merge_results(any_db, [(tmp_path / "a", sent), (tmp_path / "a", sent)])
    assert (report.added, report.completed, len(report.unchanged)) == ([], [], 8)
    assert content(export(any_db, tmp_path / "after.json")) == before


def test_runs_queued_here_are_completed_from_the_file(
    node: Database, any_db: Database, tmp_path: Path
) -> None:
    queue(any_db)  # the central database queued the grid; a node ran it offline
    sent = export(node, tmp_path / "grid.rmi.json")
    report = merge_results(any_db, [(tmp_path / "f", sent)])
    assert (report.added, len(report.completed)) == ([], 4)
    assert status_counts(any_db)["done"] == 4
    # Everything the node computed, under the central database's queueing time.
    queued_here = [run.pop("created_at") for run in content(sent)["runs"]]
    back = content(export(any_db, tmp_path / "back.json"))["runs"]
    assert [run.pop("created_at") for run in back] != queued_here
    assert back == [
        {k: v for k, v in run.items() if k != "created_at"} for run in content(sent)["runs"]
    ]


def test_a_run_trained_twice_with_other_results_refuses_the_whole_merge(
    node: Database, any_db: Database, tmp_path: Path
) -> None:
    queue(any_db)
    finish_all(any_db, loss=0.5, upto=1)  # seed 0 done here with another final loss
    sent = export(node, tmp_path / "grid.rmi.json")
    before = content(export(any_db, tmp_path / "before.json"))
    with pytest.raises(UserError) as caught:
        merge_results(any_db, [(tmp_path / "grid.rmi.json", sent)])
    message = str(caught.value)
    assert "\n" not in message
    assert f"run grid/{SPECS[0].name} ({SPECS[0].config_hash})" in message
    assert "final loss 0.5 here, 0.25 in the file" in message
    assert "nothing was merged" in message and message.startswith(str(tmp_path / "grid"))
    assert content(export(any_db, tmp_path / "after.json")) == before


def test_a_conflict_in_a_later_file_leaves_nothing_of_the_earlier_ones(
    node: Database, any_db: Database, tmp_path: Path
) -> None:
    other = queue_elsewhere(tmp_path)  # experiment "other": fine on its own
    queue(any_db)
    finish_all(any_db, loss=0.5, upto=1)
    before = content(export(any_db, tmp_path / "before.json"))
    with pytest.raises(UserError, match="trained twice"):
        merge_results(
            any_db, [(tmp_path / "o", other), (tmp_path / "g", export(node, tmp_path / "g"))]
        )
    assert content(export(any_db, tmp_path / "after.json")) == before
    with pytest.raises(UserError, match="no experiment 'other'"):
        export_experiment(any_db, "other")


def queue_elsewhere(tmp_path: Path) -> ResultsFile:
    with open_database(str(tmp_path / "elsewhere.db")) as db:
        enqueue_experiment(db, "other", [train_spec(7)])
        finish_all(db, upto=1)
        return export(db, tmp_path / "other.json", "other")


def test_a_run_name_that_means_another_configuration_here_is_a_conflict(
    node: Database, any_db: Database, tmp_path: Path
) -> None:
    renamed = [train_spec(9, name=SPECS[1].name), SPECS[0]]  # same name, other config
    enqueue_experiment(any_db, "grid", renamed)
    with pytest.raises(UserError, match=f"run grid/{SPECS[1].name} is configuration"):
        merge_results(any_db, [(tmp_path / "g", export(node, tmp_path / "g"))])
    assert status_counts(any_db)["queued"] == 2


def test_a_running_job_here_is_not_overwritten(node: Database, any_db: Database, tmp_path: Path):
    queue(any_db)
    assert claim(any_db, worker="central:1") is not None
    with pytest.raises(UserError, match=r"running here \(worker central:1\)"):
        merge_results(any_db, [(tmp_path / "g", export(node, tmp_path / "g"))])


def test_an_edited_configuration_is_refused(node: Database, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "grid.rmi.json"
    export(node, path)
    raw = json.loads(path.read_text())
    raw["runs"][0]["config_json"]["seed"] = 42
    path.write_text(json.dumps(raw))
    with pytest.raises(UserError, match="does not match its configuration"):
        merge_results(db, [(path, read_results(path))])
    assert status_counts(db)["done"] == 0


def test_damaged_per_image_counts_in_a_file_are_refused_in_one_line(
    node: Database, tmp_path: Path
) -> None:
    path = tmp_path / "grid.rmi.json"
    export(node, path)
    raw = json.loads(path.read_text())
    raw["runs"][0]["evaluations"][0]["image_counts"]["counts"] = "bm90IHpsaWI="  # "not zlib"
    path.write_text(json.dumps(raw))
    with pytest.raises(UserError, match=r"field runs\.0\.evaluations\.0\.image_counts: .*not zlib"):
        read_results(path)


def test_queued_runs_travel_as_queued(tmp_path: Path, db: Database) -> None:
    with open_database(str(tmp_path / "n.db")) as node:
        queue(node)
        assert claim(node, worker="n:1") is not None  # running there: queued here
        sent = export(node, tmp_path / "q.json")
    merge_results(db, [(tmp_path / "q.json", sent)])
    assert status_counts(db) | {"stale": 0} == {
        "queued": 4, "running": 0, "done": 0, "failed": 0, "stale": 0
    }  # fmt: skip
