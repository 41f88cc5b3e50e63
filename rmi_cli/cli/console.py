"""Where the CLI writes: data to stdout, progress and messages to stderr.

Colour and live progress only on a terminal; `NO_COLOR` (https://no-color.org) turns colour off.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from rich.console import Console

RUNNER_LOGGER = "rmi_cli"  # the runner's messages (it logs; only the CLI prints)


@cache
def err_console() -> Console:
    """Messages, progress bars and errors (stderr)."""
    return Console(stderr=True, no_color=_no_color(), highlight=False, soft_wrap=True)


@cache
def out_console() -> Console:
    """Data (tables) for the user to read or pipe (stdout). Piped output is not cut to 80
    columns: a per-class table needs about 160."""
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))
    return Console(no_color=_no_color(), highlight=False, soft_wrap=True, width=width)


def _no_color() -> bool:
    return "NO_COLOR" in os.environ


def interactive() -> bool:
    """Whether live progress bars make sense (stderr is a terminal)."""
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def info(message: str) -> None:
    """A progress or status line on stderr."""
    err_console().print(message, markup=False)


def error_line(message: str) -> None:
    """The one line a failing command prints (stderr, red on a terminal)."""
    err_console().print(f"error: {message}", style="bold red", markup=False)


class _ConsoleHandler(logging.Handler):
    """The library's log records as the CLI's lines: errors red, warnings after "warning: ",
    the rest plain."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            error_line(message)
        elif record.levelno >= logging.WARNING:
            info(f"warning: {message}")
        else:
            info(message)


@contextmanager
def show_runner_messages() -> Iterator[None]:
    """Within the block, the runner's INFO and higher messages go to stderr, once (not also
    to handlers a caller in the same process configured on the root logger)."""
    logger = logging.getLogger(RUNNER_LOGGER)
    handler, level, propagate = _ConsoleHandler(logging.INFO), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
