"""`rmi ablate` is idempotent: what is done is neither queued nor trained again, operational
settings do not count as a change, a changed setting that matters queues a new run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_kit import EXPERIMENT, TINY_MANIFEST, Rmi, Workspace, count, counts, query, run_statuses

ALL_DONE = "tiny: 0 queued, 0 re-queued, 3 already done, 0 already queued, running or failed"


def jobs(db: Path) -> list[tuple]:
    return query(db, "SELECT id, config_hash, status, attempts, finished_at FROM runs ORDER BY id")


@pytest.mark.parametrize(
    "overrides",
    [[], ["--set", "data.workers=2"], ["--set", "train.checkpoint_every=1"]],
    ids=["again", "data.workers", "train.checkpoint_every"],
)
def test_ablate_again_queues_and_trains_nothing(
    workspace: Workspace, rmi: Rmi, overrides: list[str]
) -> None:
    before_counts, before_jobs = counts(workspace.db), jobs(workspace.db)
    result = rmi("ablate", workspace.manifest, "-e", EXPERIMENT, *overrides, "--db", workspace.db)
    assert result.code == 0, str(result)
    assert ALL_DONE in result.err
    assert "training" not in result.err and "attempt" not in result.err
    assert "configuration changed" not in result.err
    assert counts(workspace.db) == before_counts
    assert jobs(workspace.db) == before_jobs


def test_dry_run_marks_done_runs_and_writes_nothing(workspace: Workspace, rmi: Rmi) -> None:
    before = workspace.db.read_bytes()
    result = rmi("ablate", workspace.manifest, "-e", EXPERIMENT, "--dry-run", "--db", workspace.db)
    assert result.code == 0, str(result)
    plan = [line for line in result.out.splitlines() if line.startswith("│ ")]
    assert [cells.split("│")[1].strip() for cells in plan] == ["ce", "rmi", "ce+crf"]
    assert all("done (skip)" in line for line in plan)
    assert "measured: " in plan[0]  # the estimate uses the throughput of the trained runs
    assert result.err.startswith("2 runs (2 done and skipped, 0 new), 1 CRF steps;")
    assert result.err.rstrip().endswith("Nothing was queued (dry run).")
    assert workspace.db.read_bytes() == before


def test_a_changed_setting_queues_new_runs(workspace: Workspace, rmi: Rmi) -> None:
    old_jobs = jobs(workspace.db)
    result = rmi(
        "ablate", workspace.manifest, "-e", EXPERIMENT, "--set", "train.iterations=4",
        "--workers", "0", "--db", workspace.db,
    )  # fmt: skip
    assert result.code == 0, str(result)
    assert "tiny: 3 queued, 0 re-queued, 0 already done" in result.err
    assert "configuration changed for: ce, rmi, ce+crf (the experiment now uses" in result.err
    assert f"start workers with: rmi worker --db {workspace.db} -e tiny" in result.err
    assert "training" not in result.err  # --workers 0 only queues
    assert run_statuses(workspace.db) == {"ce": "queued", "ce+crf": "queued", "rmi": "queued"}
    # The finished runs are kept with their results, outside the experiment now.
    assert jobs(workspace.db)[:3] == old_jobs
    new = query(
        workspace.db, "SELECT config_json FROM runs WHERE status = 'queued' AND kind = 'train'"
    )
    assert [json.loads(config)["train"]["iterations"] for (config,) in new] == [4, 4]
    assert query(workspace.db, "SELECT count(*) FROM evaluations")[0][0] == 3


def test_demo_reuses_runs_done_under_another_experiment(workspace: Workspace, rmi: Rmi) -> None:
    # Runs are identified by their configuration: the same runs named "quickstart" are done.
    manifest = workspace.root / "demo.yaml"
    manifest.write_text(TINY_MANIFEST.replace("\n  tiny:\n", "\n  quickstart:\n"))
    before = count(workspace.db, "train_results"), count(workspace.db, "evaluations")
    result = rmi("demo", "--manifest", manifest, "--db", workspace.db)
    assert result.code == 0, str(result)
    assert "quickstart: 0 queued, 0 re-queued, 3 already done" in result.err
    assert "training" not in result.err
    assert result.out.startswith("quickstart: methods on val\n")
    assert "CE & CRF-1" in result.out
    report = Path.cwd() / "report" / "index.html"
    assert (
        f"results are in {workspace.db}; try: rmi table -e quickstart --format markdown\n"
        in result.err
    )
    assert result.err.endswith(f"the report: {report} (open it in a browser)\n")
    assert "quickstart: methods on val" in report.read_text()
    assert (count(workspace.db, "train_results"), count(workspace.db, "evaluations")) == before
    assert query(workspace.db, "SELECT name FROM experiments ORDER BY name") == [
        ("quickstart",),
        ("tiny",),
    ]
