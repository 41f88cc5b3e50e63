"""Every way a command can be misused or fail ends in one line on stderr, no traceback, exit 2
(bad usage or input) or 1 (a run failed), and leaves the database as it was (or, for a failed
run, with the failure stored)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_kit import EXPERIMENT, TINY_MANIFEST, Rmi, Workspace, query, single_line_error

# (arguments, expected error line), given the workspace's database, manifest and folder.
Case = Callable[[Path, Path, Path], tuple[list[str], str]]

USAGE_ERRORS: dict[str, Case] = {
    "unknown experiment in the manifest": lambda db, m, root: (
        ["ablate", str(m), "-e", "nope"],
        f"{m}: no experiment 'nope'; the manifest defines: tiny",
    ),
    "missing manifest": lambda db, m, root: (
        ["ablate", str(root / "missing.yaml"), "-e", EXPERIMENT],
        f"{root / 'missing.yaml'}: manifest not found; pass the path of an experiments YAML "
        f"file (`rmi init` writes a starter one)",
    ),
    "unknown run of an experiment": lambda db, m, root: (
        ["train", str(m), "-e", EXPERIMENT, "--run", "zz"],
        f"{m}: experiment 'tiny' has no run 'zz'; known: ce, rmi",
    ),
    "train of an experiment with several runs": lambda db, m, root: (
        ["train", str(m), "-e", EXPERIMENT],
        "experiment 'tiny' has 2 runs; pick one with --run (ce, rmi), or queue them all with "
        "rmi ablate",
    ),
    "train --run without a manifest": lambda db, m, root: (
        ["train", "-e", EXPERIMENT, "--run", "ce"],
        "--experiment and --run need a MANIFEST argument before them",
    ),
    "train with nothing to train": lambda db, m, root: (
        ["train"],
        "rmi train: give MANIFEST --experiment E --run R, or the run's settings with --set "
        "(at least --set train.iterations=N); see rmi train --help",
    ),
    "--set of an unknown key": lambda db, m, root: (
        ["ablate", str(m), "-e", EXPERIMENT, "--set", "foo=1"],
        "--set foo=1: run 'ce': foo: expected a known key (data, eval, loss, model, seed, "
        "train); found 'foo'",
    ),
    "--set without a value": lambda db, m, root: (
        ["ablate", str(m), "-e", EXPERIMENT, "--set", "loss.radius"],
        "--set 'loss.radius': expected KEY=VALUE with a dotted key such as loss.radius=5",
    ),
    "--set of a wrong type": lambda db, m, root: (
        ["ablate", str(m), "-e", EXPERIMENT, "--set", "train.iterations=abc"],
        "--set train.iterations=abc: run 'ce': train.iterations: expected an integer; found 'abc'",
    ),
    "unknown run in the database (eval)": lambda db, m, root: (
        ["eval", "nope"],
        f"no run 'nope' in {db}; `rmi status` lists the runs",
    ),
    "unknown run in the database (crf)": lambda db, m, root: (
        ["crf", "--run", "tiny/nope"],
        f"no run 'tiny/nope' in {db}; `rmi status` lists the runs",
    ),
    "unknown run in the database (status)": lambda db, m, root: (
        ["status", "--run", "nope"],
        f"no run 'nope' in {db}; `rmi status` lists the runs",
    ),
    "crf of a crf step": lambda db, m, root: (
        ["crf", "--run", "tiny/ce+crf"],
        "run 'tiny/ce+crf' is not a training run; the CRF post-processes one",
    ),
    "bad --iters": lambda db, m, root: (
        ["crf", "--run", "tiny/ce", "--iters", "1,x"],
        "--iters: expected comma-separated integers such as 1,5,10; found '1,x'",
    ),
    "eval of a run and a checkpoint at once": lambda db, m, root: (
        ["eval", "tiny/ce", "--checkpoint", str(root / "x.pt")],
        "rmi eval: give a RUN or --checkpoint FILE (exactly one of them)",
    ),
    "eval of a missing checkpoint file": lambda db, m, root: (
        ["eval", "--checkpoint", str(root / "x.pt")],
        f"{root / 'x.pt'}: no such checkpoint file; check the path",
    ),
    "table of an unknown experiment": lambda db, m, root: (
        ["table", "-e", "nope"],
        f"{db}: no experiment 'nope' in the database (it has: tiny); queue it with `rmi ablate`",
    ),
    "table in an unknown format": lambda db, m, root: (
        ["table", "-e", EXPERIMENT, "--format", "xml"],
        "Invalid value for '--format' / '-f': Value error, 'xml' is not one of 'rich', "
        "'markdown', 'latex', 'html', 'csv', 'json'. (see `rmi --help`)",
    ),
    "table of an unknown kind": lambda db, m, root: (
        ["table", "-e", EXPERIMENT, "--kind", "grid"],
        "Invalid value for '--kind' / '-k': Value error, 'grid' is not one of 'methods', "
        "'per-class', 'ablation'. (see `rmi --help`)",
    ),
    "table of a split without results": lambda db, m, root: (
        ["table", "-e", EXPERIMENT, "--split", "test"],
        "no results on split 'test'; found results on: val",
    ),
    "ablation table of an experiment without a grid": lambda db, m, root: (
        ["table", "-e", EXPERIMENT, "--kind", "ablation"],
        "ablation: no grid key varies in this experiment; use --kind methods",
    ),
    "status in an unknown format": lambda db, m, root: (
        ["status", "--format", "markdown"],
        "Invalid value for '--format' / '-f': Value error, 'markdown' is not one of 'rich', "
        "'csv', 'json'. (see `rmi --help`)",
    ),
    "unknown command": lambda db, m, root: (
        ["bogus"],
        "No such command 'bogus'. (see `rmi --help`)",
    ),
    "missing option": lambda db, m, root: (
        ["table"],
        "Missing option '--experiment' / '-e'. (see `rmi --help`)",
    ),
    "option out of range": lambda db, m, root: (
        ["ablate", str(m), "-e", EXPERIMENT, "--workers", "-1"],
        "Invalid value for '--workers' / '-w': Input should be greater than or equal to 0 "
        "(see `rmi --help`)",
    ),
}


@pytest.mark.parametrize("case", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_errors_are_one_line_and_change_nothing(
    workspace: Workspace, rmi: Rmi, case: Case
) -> None:
    args, expected = case(workspace.db, workspace.manifest, workspace.root)
    before = workspace.db.read_bytes()
    result = rmi(*args, "--db", workspace.db)
    assert result.code == 2, str(result)
    assert result.out == ""
    assert single_line_error(result) == expected
    assert result.err.endswith(f"error: {expected}\n")
    assert workspace.db.read_bytes() == before


MANIFEST_ERRORS = {
    # name: (replace this in the tiny manifest, by this), expected message after "FILE:"
    "region out of range": (
        ("radius: 2}", "radius: 20}"),
        "17: run 'rmi': loss.radius: expected a number <= 10; found 20",
    ),
    "unknown key": (
        ("crop_size: 32", "crop_size: 32\n        colour: red"),
        "11: run 'ce': data.colour: expected a known key (crop_size, eval_split, flip, gpu_cache, "
        "mean, name, root, sbd_root, scale_range, scales, std, synthetic, train_split, "
        "void, workers); found 'colour'",
    ),
    "stride is not the pool size": (
        ("radius: 2}", "radius: 2, stride: 3}"),
        "17: run 'rmi': loss: loss.stride must equal loss.pool_size (the released code asserts "
        "it); found stride 3 and pool_size 2: drop stride or set both to the same value",
    ),
    "unknown loss": (
        ("name: ce}", "name: dice}"),
        "16: run 'ce': loss: expected `name` to be one of 'ce', 'bce', 'rmi', 'aaf'; found 'dice'",
    ),
    "unknown backbone": (
        ("backbone: resnet18", "backbone: resnet19"),
        "6: run 'ce': model.backbone: expected one of 'resnet18', 'resnet50' or 'resnet101'; "
        "found 'resnet19'",
    ),
    "unknown dataset": (
        ("name: synthetic", "name: cityscapes"),
        "8: run 'ce': data.name: expected one of 'camvid', 'voc2012', 'synthetic' or 'folder'; "
        "found 'cityscapes'",
    ),
    "wrong type": (
        ("iterations: 3", "iterations: three"),
        "12: run 'ce': train.iterations: expected an integer; found 'three'",
    ),
    "not YAML": (
        ("runs:", "runs: [oops"),
        "16: the manifest is not valid YAML (expected ',' or ']', but got ':'); fix the syntax "
        "there",
    ),
}


@pytest.mark.parametrize("case", MANIFEST_ERRORS.values(), ids=MANIFEST_ERRORS.keys())
def test_manifest_errors_name_file_and_line(
    rmi: Rmi, tmp_path: Path, case: tuple[tuple[str, str], str]
) -> None:
    (old, new), expected = case
    assert TINY_MANIFEST.count(old) == 1
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(TINY_MANIFEST.replace(old, new))
    for command in (["ablate", manifest, "-e", EXPERIMENT], ["train", manifest, "-e", "tiny"]):
        result = rmi(*command)
        assert (result.code, result.out) == (2, ""), str(result)
        assert single_line_error(result) == f"{manifest}:{expected}"
    assert not (tmp_path / "rmi.db").exists(), "a bad manifest creates no database"


def test_read_commands_create_no_database(rmi: Rmi, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    message = (
        f"{missing}: no database file here; check --db or RMI_DB (commands that queue runs "
        f"create it)"
    )
    for command in (["status"], ["table", "-e", EXPERIMENT], ["worker"], ["crf", "--run", "x"]):
        result = rmi(*command, "--db", missing)
        assert result.code == 2, str(result)
        assert single_line_error(result) == message
    for command in (["db", "current"], ["db", "upgrade"]):
        assert single_line_error(rmi(*command, "--db", missing)) == message
    assert not list(tmp_path.iterdir())


def test_a_file_that_is_not_a_database_is_left_alone(rmi: Rmi, tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    other.write_text("not a database")
    result = rmi("status", "--db", other)
    assert result.code == 2, str(result)
    assert single_line_error(result) == (
        f"{other}: not an SQLite database (the file does not start with the SQLite header); "
        f"point --db at an rmi database or at a new file name"
    )
    assert other.read_text() == "not a database"


def test_eval_of_a_run_without_a_checkpoint(workspace: Workspace, rmi: Rmi) -> None:
    queued = rmi("ablate", workspace.manifest, "-e", EXPERIMENT, "--set", "train.iterations=4",
                 "--workers", "0", "--db", workspace.db)  # fmt: skip
    assert queued.code == 0, str(queued)
    ((config_hash,),) = query(
        workspace.db,
        "SELECT r.config_hash FROM runs r JOIN experiment_runs m ON m.run_id = r.id "
        "WHERE m.name = 'ce'",
    )
    before = workspace.db.read_bytes()
    result = rmi("eval", "tiny/ce", "--db", workspace.db)
    assert (result.code, result.out) == (2, ""), str(result)
    path = workspace.runs / config_hash / "checkpoints" / "last.pt"
    assert single_line_error(result) == (
        f"run 'tiny/ce' has no checkpoint at {path} (status queued); train it first "
        f"(rmi train / rmi worker) or pass --runs-dir where its run folder lives"
    )
    assert workspace.db.read_bytes() == before


BROKEN = TINY_MANIFEST.replace("name: synthetic", "name: folder\n        root: /nonexistent/data")
DATA_ERROR = (
    "data root /nonexistent/data does not exist (data.root is '/nonexistent/data'; ${VAR} in "
    "data.root expands from the environment and ~ to your home): fix the path or set the variable"
)


@pytest.mark.parametrize(
    "command", [("ablate",), ("train", "--run", "ce")], ids=["ablate", "train"]
)
def test_runs_that_start_here_check_their_data_first(
    rmi: Rmi, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Runs that would start here are checked here: exit 2, one line, nothing queued."""
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(BROKEN)
    result = rmi(command[0], manifest, "-e", EXPERIMENT, *command[1:])
    assert (result.code, result.out, result.err) == (2, "", f"error: {DATA_ERROR}\n"), str(result)
    assert not (tmp_path / "rmi.db").exists()


def test_a_failed_run_is_stored_and_exits_1(rmi: Rmi, tmp_path: Path) -> None:
    """Queued for other machines (--workers 0: roots expand where a job runs), the data is
    missing where the worker runs: the runs fail, are stored as failed, the worker exits 1."""
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(BROKEN)
    queued = rmi("ablate", manifest, "-e", EXPERIMENT, "--workers", "0")
    assert queued.code == 0, str(queued)
    result = rmi("worker", "-e", EXPERIMENT)
    assert (result.code, result.out) == (1, ""), str(result)
    assert "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: run tiny/ce failed: {DATA_ERROR}",
        f"error: run tiny/rmi failed: {DATA_ERROR}",
        "error: 2 job(s) failed: tiny/ce, tiny/rmi",
    ]
    db = tmp_path / "rmi.db"
    rows = query(
        db,
        "SELECT m.name, r.status, r.attempts, r.error FROM runs r "
        "JOIN experiment_runs m ON m.run_id = r.id ORDER BY m.name",
    )
    (ce, crf, rmi_run) = rows
    # Bad input fails at once, without retries; the CRF step that needed the run fails too.
    assert ce == ("ce", "failed", 1, DATA_ERROR)
    assert rmi_run == ("rmi", "failed", 1, DATA_ERROR)
    assert crf[:3] == ("ce+crf", "failed", 0) and DATA_ERROR in crf[3]
    assert query(db, "SELECT count(*) FROM evaluations") == [(0,)]
    status = rmi("status", "--format", "csv")
    assert status.code == 0, str(status)
    assert "tiny/ce,train,failed,1/3," in status.out and DATA_ERROR in status.out
    assert status.err.startswith("0 queued, 0 running, 0 done, 3 failed at ")
    detail = rmi("status", "--run", "tiny/ce")
    assert "status: failed\n" in detail.out and f"error:\n{DATA_ERROR}\n" in detail.out
    # Queued again only when asked; without it, nothing is retried.
    again = rmi("ablate", manifest, "-e", EXPERIMENT, "--workers", "0")
    assert "0 queued, 0 re-queued, 0 already done, 3 already queued, running or failed" in again.err
