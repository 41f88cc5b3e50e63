"""Checks before queueing work that runs here: a dataset this machine cannot open is a one-line
error now (exit 2, nothing queued), not a failed run in the database later."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rmi_cli.config import DataConfig


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
