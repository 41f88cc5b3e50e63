"""SIGINT/SIGTERM as a polite stop request that the training loop polls (`should_stop`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(*, escalate: bool = True) -> Iterator[Callable[[], bool]]:
    """Within the block, SIGINT/SIGTERM set a flag instead of killing the process.

    Yields the `should_stop` callable for `train_run`, which then writes a checkpoint and raises
    `Interrupted`. A second signal restores the previous handlers' behaviour by re-raising
    through them, so a stuck process can still be stopped, unless `escalate` is false: a
    process under torchrun gets Ctrl-C's SIGINT from the terminal and then the one torchrun
    passes on, and must not die of the second while it checkpoints (torchrun itself kills what
    is still there after its shutdown timeout). Outside the main thread (where Python cannot
    install handlers) the block only yields a flag that never becomes true.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop.is_set
        return
    previous = {number: signal.getsignal(number) for number in _SIGNALS}

    def handle(number: int, frame: FrameType | None) -> None:
        if stop.is_set() and escalate:
            _call_previous(previous[signal.Signals(number)], number, frame)
            return
        stop.set()

    for number in _SIGNALS:
        signal.signal(number, handle)
    try:
        yield stop.is_set
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _call_previous(handler: object, number: int, frame: FrameType | None) -> None:
    if callable(handler):
        handler(number, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(number, signal.SIG_DFL)
        signal.raise_signal(number)
