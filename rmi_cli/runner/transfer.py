"""Results between databases: `rmi db export` writes an experiment to a results file on a node
that cannot reach the shared database, `rmi db merge` brings such files into it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rmi_cli import db as store
from rmi_cli.db.export import export_experiment
from rmi_cli.db.merge import MergeReport, merge_results
from rmi_cli.db.portable import ResultsFile, read_results, write_results
from rmi_cli.runner.opening import DatabaseTarget, opened


def export_results(database: store.Database, experiment: str, output: Path) -> ResultsFile:
    """Write `experiment` (its runs, results, environments, tables) to `output`, atomically."""
    document = export_experiment(database, experiment)
    write_results(document, output)
    return document


def merge_files(database: DatabaseTarget, files: Sequence[Path]) -> MergeReport:
    """Merge results files in one transaction; every file is read and validated first, so a
    bad file opens (or creates) no database."""
    documents = [(path, read_results(path)) for path in files]
    with opened(database) as db:
        return merge_results(db, documents)
