"""Facts about the machine a command runs on (standard library only)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else the machine's count): the
    default number of CRF processes, and the count the dry run's CRF estimate assumes."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)
