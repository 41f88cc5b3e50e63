"""Worker names and whether a holder's process is gone: certain only on this host, and never
fooled by a reused pid."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rmi_cli.db import Job
from rmi_cli.runner.holders import WorkerId, describe_holder, holder_is_gone, worker_name

LINUX = Path("/proc/self/stat").exists()


def name_of(pid: int) -> str:
    """The name a process has on the queue, from /proc as the format documents it."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    start = stat[stat.rfind(")") + 2 :].split()[19]
    namespace = os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")  # noqa: PTH115
    return f"{socket.gethostname()}:{pid}:{start}:{namespace}"


def test_names_parse_and_print_back() -> None:
    assert WorkerId.parse("h:12:345:678") == WorkerId("h", 12, "345", "678")
    assert WorkerId.parse("h:12") == WorkerId("h", 12)
    assert str(WorkerId("h", 12, "345", "678")) == "h:12:345:678" and str(WorkerId("h", 1)) == "h:1"
    for odd in ("", "h", "h:x", "h:1:2", "h:1:2:3:4"):
        assert WorkerId.parse(odd) is None


@pytest.mark.skipif(not LINUX, reason="needs /proc (Linux)")
def test_this_process_is_named_with_its_start_time() -> None:
    assert worker_name() == name_of(os.getpid())
    assert not holder_is_gone(worker_name())


@pytest.mark.skipif(not LINUX, reason="needs /proc (Linux)")
def test_a_reaped_process_is_gone_a_live_one_is_not() -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        name = name_of(child.pid)
        assert not holder_is_gone(name)
        held = WorkerId.parse(name)
        assert held is not None
        # The same pid with another start time: the pid was reused, the holder is gone.
        assert holder_is_gone(str(WorkerId(held.host, held.pid, held.start + "1", held.namespace)))
        # An old-style name (no start time) of a live pid: cannot rule out reuse, so not gone.
        assert not holder_is_gone(f"{held.host}:{held.pid}")
    finally:
        child.kill()
        child.wait()
    assert holder_is_gone(name)


def test_holders_elsewhere_are_never_judged() -> None:
    me = WorkerId.parse(worker_name())
    assert me is not None
    assert not holder_is_gone(f"another-host:{2**22 + 1}:1:{me.namespace}")
    assert not holder_is_gone(f"{me.host}:{2**22 + 1}:1:other-namespace")
    assert not holder_is_gone(None) and not holder_is_gone("garbage")


def test_the_holder_is_described_with_its_times() -> None:
    now = datetime.now(UTC)
    job = Job(
        id=1, kind="train", config_hash="abc", config={}, status="running", attempts=1,
        max_attempts=3, priority=10, worker="gpu7:4242:99:1", heartbeat_at=now - timedelta(
            seconds=20), lease_expires_at=now + timedelta(seconds=280), error=None, workdir=None,
        checkpoint_path=None, depends_on_id=None, depends_on_hash=None, names=("e/ce",),
        started_at=now - timedelta(seconds=600),
    )  # fmt: skip
    text = describe_holder(job, "run e/ce")
    assert text.startswith("run e/ce is held by worker gpu7:4242:99:1 (process 4242 on gpu7) since")
    assert "(600 s ago), last heartbeat" in text and "(20 s ago), lease ends" in text
    assert text.endswith("(in 280 s)") or text.endswith("(in 279 s)")
