"""Which tables `rmi table` shows by default, and writing them to a file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rmi_cli.engine.atomic import atomic_write_text
from rmi_cli.errors import UserError


def default_kinds(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """An ablation grid for experiments whose runs differ by grid values within one method;
    the methods table and the per-class table otherwise."""
    per_method: dict[tuple[Any, Any], set[str]] = {}
    for row in records:
        key = (row.get("method"), row.get("group"))
        per_method.setdefault(key, set()).add(repr(sorted((row.get("params") or {}).items())))
    if any(len(settings) > 1 for settings in per_method.values()):
        return ["ablation"]
    return ["methods", "per-class"]


def write_atomically(path: Path, text: str) -> None:
    """Write an export so that a reader never sees half of it."""
    if path.is_dir():
        raise UserError(f"--output {path}: is a folder; give a file name such as table.md")
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise UserError(
            f"--output {path}: cannot write ({exc.strerror}); pick another path"
        ) from None
