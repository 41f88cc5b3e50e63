"""`rmi train`, `rmi eval` and `rmi crf` on one run, each checked in the database afterwards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_kit import EXPERIMENT, Rmi, Workspace, counts, query, run_statuses

from rmi_cli.data.scenes import CLASS_NAMES

# One small run from flags alone: what `rmi train` without a manifest is for.
ADHOC = [
    "data.synthetic.height=32", "data.synthetic.width=48", "data.synthetic.train_images=4",
    "data.synthetic.val_images=2", "data.crop_size=32", "data.workers=0",
    "model.backbone=resnet18", "loss.name=bce", "train.iterations=2", "train.batch_size=2",
    "train.device=cpu", "train.checkpoint_every=100", "eval.warmup_images=0",
]  # fmt: skip


def evaluations(db: Path) -> list[tuple]:
    return query(
        db,
        "SELECT m.name, e.split, e.postprocess, e.id, e.num_images, e.miou FROM evaluations e "
        "JOIN experiment_runs m ON m.run_id = e.run_id ORDER BY m.name, e.split, e.postprocess",
    )


def hash_of(db: Path, name: str) -> str:
    ((config_hash,),) = query(
        db,
        "SELECT r.config_hash FROM runs r JOIN experiment_runs m ON m.run_id = r.id "
        "WHERE m.name = ?",
        name,
    )
    return config_hash


@pytest.mark.slow
def test_train_from_flags_alone(rmi: Rmi, tmp_path: Path) -> None:
    result = rmi("train", *[arg for value in ADHOC for arg in ("--set", value)])
    assert result.code == 0, str(result)
    db = tmp_path / "rmi.db"  # the default: ./rmi.db, run folders in ./runs
    ((name, config_hash, status, attempts),) = query(
        db,
        "SELECT m.name, r.config_hash, r.status, r.attempts FROM runs r "
        "JOIN experiment_runs m ON m.run_id = r.id JOIN experiments x ON x.id = m.experiment_id "
        "WHERE x.name = 'adhoc'",
    )
    assert (name, status, attempts) == (f"run-{config_hash[:8]}", "done", 1)
    assert f"adhoc/{name}: val mIoU" in result.err
    assert [row[0] for row in query(db, "SELECT iteration FROM train_metrics")] == [2]
    assert query(db, "SELECT split, postprocess, num_images FROM evaluations") == [
        ("val", "none", 2)
    ]
    assert (tmp_path / "runs" / config_hash / "checkpoints" / "iter-2.pt").is_file()
    # The same flags again: already done, nothing trained.
    again = rmi("train", *[arg for value in ADHOC for arg in ("--set", value)])
    assert again.code == 0, str(again)
    assert again.err == (f"adhoc/{name} is already done (config {config_hash}); see rmi table\n")


def test_train_a_manifest_run(workspace: Workspace, rmi: Rmi) -> None:
    before = counts(workspace.db)
    args = ("train", workspace.manifest, "-e", EXPERIMENT, "--run", "rmi", "--db", workspace.db)
    done = rmi(*args)
    assert done.code == 0, str(done)
    old_hash = hash_of(workspace.db, "rmi")
    assert done.err == f"tiny/rmi is already done (config {old_hash}); see rmi table\n"
    assert counts(workspace.db) == before
    # A changed setting trains a new run, which the experiment's "rmi" now names.
    result = rmi(*args, "--set", "train.iterations=2")
    assert result.code == 0, str(result)
    assert result.err.startswith(
        "tiny/rmi: configuration changed; the experiment now uses this run (the old run stays "
        "in the database)\n"
    )
    assert "tiny/rmi: val mIoU" in result.err
    new_hash = hash_of(workspace.db, "rmi")
    assert new_hash != old_hash
    ((status, iterations),) = query(
        workspace.db,
        "SELECT r.status, t.iterations FROM runs r JOIN train_results t ON t.run_id = r.id "
        "WHERE r.config_hash = ?",
        new_hash,
    )
    assert (status, iterations) == ("done", 2)
    assert query(workspace.db, "SELECT status FROM runs WHERE config_hash = ?", old_hash) == [
        ("done",)
    ]
    assert run_statuses(workspace.db) == {"ce": "done", "ce+crf": "done", "rmi": "done"}


def test_eval_replaces_the_stored_evaluation(workspace: Workspace, rmi: Rmi) -> None:
    before = evaluations(workspace.db)
    result = rmi("eval", "tiny/ce", "--db", workspace.db)
    assert result.code == 0, str(result)
    assert "tiny/ce: val, 3 images" in result.out
    for name in (*CLASS_NAMES, f"mIoU ({len(CLASS_NAMES)} classes)", "pixel accuracy"):
        assert f"│ {name} " in result.out, name
    assert "ms median" in result.err and "not stored" not in result.err
    after = evaluations(workspace.db)
    assert len(after) == len(before)
    (old,) = [row for row in before if row[:3] == ("ce", "val", "none")]
    (new,) = [row for row in after if row[:3] == ("ce", "val", "none")]
    assert new[3] != old[3], "the evaluation was stored again"
    assert new[4:] == pytest.approx(old[4:])  # same weights, same images: same scores
    assert [row for row in after if row[0] != "ce"] == [row for row in before if row[0] != "ce"]


def test_eval_of_part_of_a_split_is_not_stored(workspace: Workspace, rmi: Rmi) -> None:
    before = evaluations(workspace.db)
    result = rmi("eval", "rmi", "--max-images", "1", "--db", workspace.db)
    assert result.code == 0, str(result)
    assert "tiny/rmi: val, 1 images" in result.out
    assert "not stored: --max-images 1 evaluates part of the split\n" in result.err
    assert evaluations(workspace.db) == before


def test_eval_a_checkpoint_file(workspace: Workspace, rmi: Rmi) -> None:
    checkpoints = workspace.runs / hash_of(workspace.db, "rmi") / "checkpoints"
    final = checkpoints / "iter-3.pt"
    result = rmi("eval", "--checkpoint", final, "--split", "test", "--db", workspace.db)
    assert result.code == 0, str(result)
    assert f"{final}: test, 2 images" in result.out
    tests = [row for row in evaluations(workspace.db) if row[1] == "test"]
    assert [(row[0], row[2], row[4]) for row in tests] == [("rmi", "none", 2)]
    # An earlier checkpoint of the same run is scored but not stored as the run's result.
    os.link(final, checkpoints / "iter-2.pt")
    before = evaluations(workspace.db)
    result = rmi("eval", "--checkpoint", checkpoints / "iter-2.pt", "--split", "test",
                 "--db", workspace.db)  # fmt: skip
    assert result.code == 0, str(result)
    assert (
        "not stored: iter-2.pt is not the run's result (its final checkpoint is iter-3.pt)\n"
        in result.err
    )
    assert evaluations(workspace.db) == before


def test_crf_stores_every_iteration_count_once(workspace: Workspace, rmi: Rmi) -> None:
    args = ("crf", "--run", "tiny/ce", "--iters", "1,2", "--workers", "1", "--db", workspace.db)
    result = rmi(*args)
    assert result.code == 0, str(result)
    assert "tiny/ce+crf: dense CRF (1, 2 iterations) on val" in result.err
    crf = [row for row in evaluations(workspace.db) if row[0] == "ce+crf"]
    assert [(row[1], row[2], row[4]) for row in crf] == [("val", "crf-1", 3), ("val", "crf-2", 3)]
    ((crf_ms, total_ms, workers),) = query(
        workspace.db,
        "SELECT crf_median_ms, total_median_ms, crf_workers FROM evaluations "
        "WHERE postprocess = 'crf-2'",
    )
    assert crf_ms > 0 and total_ms > crf_ms and workers == 1
    assert run_statuses(workspace.db)["ce+crf"] == "done"
    before = counts(workspace.db), evaluations(workspace.db)
    again = rmi(*args)
    assert again.code == 0, str(again)
    assert again.err == "CRF 1, 2 on tiny/ce is already stored; see rmi table\n"
    assert (counts(workspace.db), evaluations(workspace.db)) == before
    # More counts later: the step grows; the counts stored before stay in the tables.
    more = rmi("crf", "--run", "tiny/ce", "--iters", "3", "--workers", "1", "--db", workspace.db)
    assert more.code == 0, str(more)
    assert "tiny/ce+crf: dense CRF (1, 2, 3 iterations) on val" in more.err
    crf = [row[2] for row in evaluations(workspace.db) if row[0] == "ce+crf"]
    assert crf == ["crf-1", "crf-2", "crf-3"]
    subset = rmi("crf", "--run", "tiny/ce", "--iters", "2", "--db", workspace.db)
    assert subset.err == "CRF 2 on tiny/ce is already stored; see rmi table\n"
    # Another split is a step of its own beside the first.
    test = rmi("crf", "--run", "tiny/ce", "--iters", "1", "--split", "test", "--db", workspace.db)
    assert test.code == 0, str(test)
    steps = {row[0]: row[1] for row in evaluations(workspace.db) if "+crf" in row[0]}
    assert steps == {"ce+crf": "val", "ce+crf@test": "test"}
    # A split the dataset does not have: one line, exit 2, nothing queued.
    before = counts(workspace.db)
    bad = rmi("crf", "--run", "tiny/ce", "--split", "nope", "--db", workspace.db)
    no_split = "dataset 'synthetic' has no split 'nope'; known splits: train, val, test, trainval"
    assert (bad.code, bad.err) == (2, f"error: {no_split}\n")
    assert counts(workspace.db) == before
    # The manifest's own CRF step (iterations [1]) is a subset of what is stored: queueing the
    # experiment again (and its dry run) finds it done and keeps every count.
    dry = rmi("ablate", workspace.manifest, "-e", EXPERIMENT, "--dry-run", "--db", workspace.db)
    assert "ce+crf" in dry.out and "new" not in dry.out, str(dry)
    back = rmi("ablate", workspace.manifest, "-e", EXPERIMENT, "--db", workspace.db)
    assert back.code == 0, str(back)
    assert "tiny: 0 queued, 0 re-queued, 3 already done" in back.err
    assert "configuration changed" not in back.err
    crf = [row[2] for row in evaluations(workspace.db) if row[0] == "ce+crf"]
    assert crf == ["crf-1", "crf-2", "crf-3"]
