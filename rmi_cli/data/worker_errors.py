"""One-line errors from DataLoader worker processes.

An exception raised in a worker comes back to the main process as PyTorch re-raises it: the same
type, but with a message that holds the worker's whole traceback ("Caught DataError in
DataLoader worker process 0. Original Traceback ..."). For our errors, whose message is the one
line the user must see, that would put a traceback in front of them; this recovers the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rmi_cli.errors import RmiError

T = TypeVar("T")


def surface_worker_errors(loader: Iterable[T]) -> Iterator[T]:
    """Iterate `loader`; an `RmiError` from a worker is raised again with its own message."""
    try:
        yield from loader
    except RmiError as exc:
        original = worker_message(exc)
        if original is None:
            raise
        raise type(exc)(original) from None


def worker_message(exc: BaseException) -> str | None:
    """The original message inside a re-raised worker error; None when `exc` is not one."""
    text = str(exc)
    if not text.startswith(f"Caught {type(exc).__name__} in DataLoader worker process"):
        return None
    cls = type(exc)
    prefixes = (f"{cls.__module__}.{cls.__qualname__}: ", f"{cls.__qualname__}: ")
    for line in reversed(text.splitlines()):
        for prefix in prefixes:
            if line.startswith(prefix):
                return line[len(prefix) :]
    return None
