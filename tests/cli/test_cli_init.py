"""`rmi init`: a starter manifest that validates, whose quickstart is the demo's and runs, and
that never replaces a file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cli_kit import REPO, Rmi, counts, run_statuses

from rmi_cli.manifest import load_manifest

# The quickstart, shrunk to seconds: tiny scenes, three iterations.
TINY = [
    "train.iterations=3", "train.warmup_iters=1", "train.batch_size=2",
    "train.checkpoint_every=100", "data.crop_size=32", "data.synthetic.height=32",
    "data.synthetic.width=48", "data.synthetic.train_images=4", "data.synthetic.val_images=3",
]  # fmt: skip


def test_init_writes_a_manifest_whose_experiments_validate(rmi: Rmi, tmp_path: Path) -> None:
    result = rmi("init")
    assert result.code == 0, result
    written = tmp_path / "experiments.yaml"
    assert f"wrote {written.name}" in result.err
    manifest = load_manifest(written)
    assert manifest.experiment_names == ["quickstart", "my-data"]
    mine = manifest.plan("my-data")
    assert {run.config.data.name for run in mine.runs} == {"folder"}
    assert len(mine.runs) == 6 and [step.split for step in mine.crf_steps] == ["val"] * 3
    assert "#" in written.read_text()  # commented for the reader
    # The starter's quickstart is the demo's (one experiment, two files: kept equal here).
    shipped = load_manifest(REPO / "experiments.yaml").plan("quickstart")
    ours = manifest.plan("quickstart")
    assert [r.config_hash for r in ours.runs] == [r.config_hash for r in shipped.runs]
    assert [s.config_hash for s in ours.crf_steps] == [s.config_hash for s in shipped.crf_steps]
    assert ours.tables == shipped.tables


def test_init_never_overwrites(rmi: Rmi, tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("my own work\n")
    result = rmi("init", target)
    assert result.code == 2, result
    assert result.err.strip().splitlines() == [
        f"error: {target} already exists; rmi init does not overwrite it: remove it, or give "
        f"another path (rmi init PATH)"
    ]
    assert target.read_text() == "my own work\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]  # no temporary left


def test_init_into_a_folder_and_a_missing_one(rmi: Rmi, tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    assert rmi("init", tmp_path / "project").code == 0
    assert (tmp_path / "project" / "experiments.yaml").is_file()
    missing = rmi("init", tmp_path / "nowhere" / "x.yaml")
    assert missing.code == 2 and "nowhere: no such folder" in missing.err, missing
    assert not (tmp_path / "nowhere").exists()


def test_the_starter_quickstart_runs(rmi: Rmi, tmp_path: Path) -> None:
    assert rmi("init").code == 0
    sets = [arg for value in TINY for arg in ("--set", value)]
    result = rmi("ablate", "experiments.yaml", "-e", "quickstart", *sets, "--db", "rmi.db")
    assert result.code == 0, result
    db = tmp_path / "rmi.db"
    assert run_statuses(db) == dict.fromkeys(["bce", "ce", "ce+crf", "rmi"], "done"), counts(db)
    table = rmi("table", "-e", "quickstart", "--kind", "methods", "--format", "csv", "--db", db)
    assert table.code == 0, table
    labels = {
        row["label"].removesuffix(" (from scratch)")
        for row in csv.DictReader(io.StringIO(table.out))
    }
    assert labels == {"CE", "BCE", "RMI", "CE & CRF-1", "CE & CRF-5"}, table
