"""Checks before queueing work that runs here: a dataset this machine cannot open, or a runs
folder it cannot write, is a one-line error now (exit 2, nothing queued), not a failed run in
the database later."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from rmi_cli.config import DataConfig
from rmi_cli.errors import UserError
from rmi_cli.run_folder import RUNS_DIR_ENV


def check_datasets(needs: Iterable[tuple[DataConfig, str]]) -> None:
    """Open every (dataset, split) once: its root, split list and listed files must exist.
    Raises the data layer's `DataError` (a `UserError`) naming what is missing."""
    from rmi_cli.data import build_dataset  # torch: only for commands that run work here

    seen: set[tuple[str, str]] = set()
    for data, split in needs:
        key = (data.model_dump_json(), split)
        if key not in seen:
            seen.add(key)
            build_dataset(data, split)


def missing_roots(datasets: Iterable[DataConfig]) -> list[str]:
    """Dataset roots (as they expand here) that do not exist on this machine, each once."""
    missing: dict[str, None] = {}
    for data in datasets:
        root = data.resolved_root() if data.root else None
        if root is not None and not Path(root).is_dir():
            missing[str(root)] = None
    return list(missing)


def check_runs_root(root: Path) -> None:
    """The folder of run folders must be (or become) a folder this process can write: created
    if missing, and a file created and removed in it. A file in its place, a read-only or
    pseudo file system, or a missing permission otherwise failed every attempt of a job with a
    raw FileNotFoundError or NotADirectoryError."""
    where = f"runs folder {root} (--runs-dir, ${RUNS_DIR_ENV}, or runs/ beside the database)"
    blocker = next((p for p in [root, *root.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError(f"{where}: {blocker} is a file, not a folder; point --runs-dir at a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root, prefix=".rmi-write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"{where}: cannot write there ({reason}); point --runs-dir at a writable folder"
        ) from None
