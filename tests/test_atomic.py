"""Atomic writes keep what a rename would lose: symlinks, permission bits, special files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rmi_cli.atomic import NotARegularFile, atomic_write_bytes


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umask_mode_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "new.txt", b"x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "new.txt") == 0o640


@pytest.mark.parametrize("bits", [0o644, 0o600, 0o664])
def test_a_replaced_file_keeps_its_mode(tmp_path: Path, bits: int) -> None:
    target = tmp_path / "table.md"
    target.write_bytes(b"old")
    target.chmod(bits)
    atomic_write_bytes(target, b"new")
    assert (target.read_bytes(), mode(target)) == (b"new", bits)


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_is_written_through(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "data" / "table.md"
    target.parent.mkdir()
    if not dangling:
        target.write_bytes(b"old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.md"]


def test_what_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile, match="a FIFO, device or socket, not a regular file"):
        atomic_write_bytes(fifo, b"x")
    with pytest.raises(NotARegularFile, match="a folder, not a regular file"):
        atomic_write_bytes(tmp_path, b"x")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
