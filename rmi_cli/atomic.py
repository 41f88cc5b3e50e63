"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`
    (`Path.replace`, i.e. `os.replace`).

    The temporary file lives in the same directory because `os.replace` is atomic only within
    one file system. A failure at any point removes the temporary file and leaves `path` as it
    was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temp_name).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temp_name).unlink()
        raise
    _fsync_directory(path.parent)


def atomic_link(source: Path, path: Path, *, fallback: bytes) -> None:
    """Make `path` a hard link to `source`, replacing `path` atomically; where the file system
    has no hard links, write `fallback` (the same bytes) to `path` atomically instead."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.link.tmp")
    try:
        temp.unlink(missing_ok=True)
        os.link(source, temp)
    except OSError:
        atomic_write_bytes(path, fallback)
        return
    try:
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    _fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; some file systems refuse to open a directory."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
