"""The wheel works anywhere: built from the repository, installed (not editable) into a fresh
folder, and run from an unrelated one, it finds its migrations and the quickstart's manifest."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The demo's experiment in seconds: tiny scenes, three iterations, the CRF step included.
TINY = [
    "train.iterations=3", "train.warmup_iters=1", "train.batch_size=2",
    "train.checkpoint_every=100", "data.crop_size=32", "data.synthetic.height=32",
    "data.synthetic.width=48", "data.synthetic.train_images=4", "data.synthetic.val_images=3",
]  # fmt: skip
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
              ".hypothesis", "runs", "rmi.db*", ".gpu", ".pydeps")  # fmt: skip


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> tuple[str, str]:
    """stdout and stderr of a command that must succeed."""
    done = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout, done.stderr


def test_installed_wheel_runs_the_demo_from_an_unrelated_folder(tmp_path: Path) -> None:
    # Build from a copy: setuptools reuses build/ in the tree it builds, whose stale files
    # could otherwise hide a missing one.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", ".",
        cwd=source)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("rmi_cli-*.whl")
    target = tmp_path / "installed"
    run(*pip, "install", "--no-deps", "--no-compile", "--target", target, wheel, cwd=tmp_path)
    shutil.rmtree(source)  # nothing may come from a source tree
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed copy first; this interpreter's site-packages only for the dependencies.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RMI_")}
    env |= {"PYTHONPATH": str(target), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    rmi = [sys.executable, "-m", "rmi_cli"]
    where, _ = run(
        sys.executable, "-c",
        "import rmi_cli, rmi_cli.resources as r; "
        "print(rmi_cli.__file__, r.migrations_dir(), r.experiments_manifest(), sep='\\n')",
        cwd=elsewhere, env=env,
    )  # fmt: skip
    assert all(line.startswith(str(target)) for line in where.split()), where

    sets = [arg for value in TINY for arg in ("--set", value)]
    tables, log = run(*rmi, "demo", "--db", "demo.db", *sets, cwd=elsewhere, env=env)
    assert "results are in" in log and "CE & CRF-5" in tables, (tables, log)
    page = elsewhere / "report" / "index.html"  # the demo ends with its report
    assert f"the report: {page}" in log and "quickstart: methods on val" in page.read_text()
    current, _ = run(*rmi, "db", "current", "--db", "demo.db", cwd=elsewhere, env=env)
    assert "up to date" in current, current
    table, _ = run(*rmi, "table", "-e", "quickstart", "-k", "methods", "-f", "csv", "--db",
                   "demo.db", cwd=elsewhere, env=env)  # fmt: skip
    rows = csv.DictReader(io.StringIO(table))
    labels = {row["label"].removesuffix(" (from scratch)") for row in rows}
    assert labels == {"CE", "BCE", "RMI", "CE & CRF-1", "CE & CRF-5"}, table
    # A new user's next step works there too: a starter manifest, planned.
    run(*rmi, "init", cwd=elsewhere, env=env)
    _, plan = run(*rmi, "ablate", "experiments.yaml", "-e", "my-data", "--dry-run",
                  cwd=elsewhere, env=env)  # fmt: skip
    assert "6 runs" in plan, plan
    assert sorted(p.name for p in elsewhere.iterdir()) == [
        "demo.db", "experiments.yaml", "report", "runs"
    ]  # fmt: skip
