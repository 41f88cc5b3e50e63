"""Who holds a job: this process's name on the queue, whether a holder on this host is gone,
and how to say who holds a job that cannot be taken over.

A worker's name is `host:pid:start:ns` on Linux (`start`: the process's start time in clock
ticks since boot, /proc/<pid>/stat field 22, which tells a reused pid from the holder; `ns`: the
pid namespace, so two containers with one host name do not judge each other's pids), and
`host:pid` where /proc is missing; inside a batch job it ends in `@slurm:JOBID` (or
`@local:ID` under submitit's local executor), so `rmi status` shows which job holds which
run. A holder is gone only when that is certain: same host and pid namespace, and no such
process, a zombie, or a process that started at another time.
Anything else (another host, a live process, an older `host:pid` name, no /proc) leaves the
decision to the lease.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from rmi_cli import db as store
from rmi_cli.launch import scheduler_job


@dataclass(frozen=True)
class WorkerId:
    """A worker's name, taken apart."""

    host: str
    pid: int
    start: str | None = None  # start time in clock ticks since boot (Linux)
    namespace: str | None = None  # the pid namespace's inode (Linux)
    job: str | None = None  # the batch job it runs in ("slurm:1234"; `launch.scheduler_job`)

    @classmethod
    def parse(cls, worker: str) -> WorkerId | None:
        process, at, job = worker.partition("@")
        parts = process.split(":")
        if len(parts) not in (2, 4) or not parts[1].isdigit():
            return None
        start, namespace = (parts[2], parts[3]) if len(parts) == 4 else (None, None)
        return cls(parts[0], int(parts[1]), start, namespace, job if at else None)

    def __str__(self) -> str:
        name = f"{self.host}:{self.pid}"
        if self.start is not None and self.namespace is not None:
            name += f":{self.start}:{self.namespace}"
        return f"{name}@{self.job}" if self.job else name


@cache
def this_worker() -> WorkerId:
    """This process (fixed for its lifetime, so read once)."""
    pid, job = os.getpid(), scheduler_job()
    start, namespace = _process_start(pid), _pid_namespace()
    if start is None or namespace is None:
        return WorkerId(socket.gethostname(), pid, job=job)
    return WorkerId(socket.gethostname(), pid, start, namespace, job)


def worker_name() -> str:
    """This process's name on the queue."""
    return str(this_worker())


def holder_is_gone(worker: str | None) -> bool:
    """Whether the process named `worker` certainly no longer runs (see the module's notes)."""
    held, me = WorkerId.parse(worker or ""), this_worker()
    if held is None or os.name != "posix":
        return False
    if (held.host, held.namespace) != (me.host, me.namespace):
        return False
    try:
        os.kill(held.pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, under another user
    except OSError:
        return False
    if held.start is None:
        return False  # the pid exists and may have been reused: the lease decides
    state, start = _process_state(held.pid), _process_start(held.pid)
    return state in ("Z", "X") or (start is not None and start != held.start)


def describe_holder(job: store.Job, what: str) -> str:
    """`what` is held by another worker: who, since when, last heard of, and when its lease ends."""
    now = datetime.now(UTC)
    held = WorkerId.parse(job.worker or "")
    who = (
        f"worker {job.worker} (process {held.pid} on {held.host})"
        if held
        else f"worker {job.worker}"
    )
    since = f" since {_at(job.started_at, now)}" if job.started_at else ""
    heard = f", last heartbeat {_at(job.heartbeat_at, now)}" if job.heartbeat_at else ""
    lease = f", lease ends {_at(job.lease_expires_at, now)}" if job.lease_expires_at else ""
    return f"{what} is held by {who}{since}{heard}{lease}"


def _at(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    when = f"in {seconds:.0f} s" if seconds >= 0 else f"{-seconds:.0f} s ago"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({when})"


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; the command name (field 2) may hold spaces."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _process_state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _process_start(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None  # field 22: starttime


def _pid_namespace() -> str | None:
    try:
        link = str(Path("/proc/self/ns/pid").readlink())  # "pid:[4026531836]"
    except OSError:
        return None
    return link.partition("[")[2].rstrip("]") or None
