"""Which failures of a job may pass on another attempt, and which fail the same way every time.

A job is retried (up to its attempts) only when trying again can change the outcome: the
machine ran out of memory, a disk or network file system hiccupped, the database was briefly
unreachable, a data-loader process died. Bad input (`UserError`), a diverged run (`RunFailed`)
and plain Python errors raised by the same code on the same configuration (a ValueError, an
OverflowError, a KeyError: a bug, or an input nothing checked) fail the same way every time;
retrying them only repeats the error three times, as the break-test saw.
"""

from __future__ import annotations

import traceback

from rmi_cli.errors import RunFailed, UserError

# RuntimeErrors that come from the machine rather than from the code: CUDA and its libraries,
# a data-loader process that died (the OOM killer), a worker pool that broke.
_TRANSIENT_RUNTIME = (
    "out of memory",
    "CUDA",
    "cuDNN",
    "cuBLAS",
    "NCCL",
    "DataLoader worker",
    "process pool",
    "terminated abruptly",
)


def may_pass_on_retry(exc: BaseException) -> bool:
    """Whether another attempt of the job could end differently."""
    if isinstance(exc, UserError | RunFailed):
        return False
    if isinstance(exc, OSError | MemoryError):
        return True  # the disk, the network, the memory: the machine's state, not the input
    if _is_database_error(exc):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc)
        return any(marker in text for marker in _TRANSIENT_RUNTIME)
    return False


def _is_database_error(exc: BaseException) -> bool:
    # By name: the runner's callers need not import SQLAlchemy to classify an error.
    return any(cls.__module__.startswith("sqlalchemy") for cls in type(exc).__mro__)


def error_summary(error: str | None) -> str:
    """The line of a stored error worth showing: the message itself, or the last line of a
    stored traceback (`Type: message`)."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    if not lines:
        return "no error recorded"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (some carry a traceback in it)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def describe_failure(exc: BaseException) -> str:
    """The stored error: the exception and the last frames of its traceback."""
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-4)
    return "".join(frames).strip()
