"""Which failures a job is retried for: those another attempt could change."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from rmi_cli.errors import DataError, LossOptionError, RunFailed
from rmi_cli.runner.failures import may_pass_on_retry


@pytest.mark.parametrize(
    "error",
    [
        OSError(5, "Input/output error"),
        MemoryError(),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("DataLoader worker (pid 123) is killed by signal: Killed."),
        OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
    ],
    ids=type,
)
def test_the_machines_failures_are_retried(error: BaseException) -> None:
    assert may_pass_on_retry(error)


@pytest.mark.parametrize(
    "error",
    [
        DataError("label a.png holds values [7]"),
        LossOptionError("RMI needs a pooled map of at least R x R"),
        RunFailed("the loss is nan at iteration 7"),
        ValueError("Overflow when unpacking long long"),
        OverflowError("cannot convert float infinity to integer"),
        KeyError("model"),
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x3 and 4x3)"),
    ],
    ids=lambda error: f"{type(error).__name__}: {error}"[:40],
)
def test_failures_of_the_input_or_the_code_are_not(error: BaseException) -> None:
    assert not may_pass_on_retry(error)
