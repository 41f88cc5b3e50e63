"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


class NotARegularFile(OSError):
    """The path names a FIFO, a device, a socket or a folder: renaming a file over it would
    replace it with a regular file (a FIFO's reader would never see the data)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`
    (`Path.replace`, i.e. `os.replace`).

    The temporary file lives in the same directory because `os.replace` is atomic only within
    one file system. A failure at any point removes the temporary file and leaves `path` as it
    was. What the rename would lose is kept: a symlink is written through (its target is
    replaced, the link stays), the file replaced keeps its permission bits (a new one gets the
    umask's, not mkstemp's 0600), and what is not a regular file is refused.
    """
    path = _final_target(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        Path(temp_name).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temp_name).unlink()
        raise
    _fsync_directory(path.parent)


def _final_target(path: Path) -> Path:
    """`path` with symlinks followed (a dangling link: the file it points to, created)."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        kind = "a folder" if path.is_dir() else "a FIFO, device or socket"
        raise NotARegularFile(errno.EINVAL, f"{kind}, not a regular file", str(path))
    return path


def _mode_for(path: Path) -> int:
    """The permission bits the written file gets: those of the file it replaces, else the
    default for a new file (0666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # /proc avoids os.umask's set-and-restore, which would briefly change it for every thread.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
