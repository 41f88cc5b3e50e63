"""Progress display of a training run on stderr.

A rich bar (iteration, loss, lr, images/s, ETA) on a terminal; one plain line per report when
stderr is not a terminal or `NO_COLOR` is set (logs of queued jobs stay readable); nothing at
all when the caller switches progress off.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from rmi_cli.records import TrainMetrics


@dataclass
class TrainClock:
    """Elapsed time, images/s per report window and the ETA of this process's part of a run."""

    start_iteration: int
    start: float = field(default_factory=time.perf_counter)
    lap_start: float = field(default_factory=time.perf_counter)
    lap_iteration: int = -1

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def lap(self, iteration: int, batch_size: int) -> float:
        """Images per second since the previous lap."""
        now = time.perf_counter()
        first = self.start_iteration if self.lap_iteration < 0 else self.lap_iteration
        speed = (iteration - first) * batch_size / max(now - self.lap_start, 1e-9)
        self.lap_start, self.lap_iteration = now, iteration
        return speed

    def eta(self, iteration: int, total: int) -> float:
        done = iteration - self.start_iteration
        return self.elapsed() / done * (total - iteration) if done > 0 else math.inf


def _use_rich() -> bool:
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


class TrainProgress:
    """Context manager: `advance(n)` every step, `report(metrics)` every log period.

    With `metrics=False` (evaluation) the bar shows only the count and the ETA.
    """

    def __init__(
        self, *, total: int, start: int, enabled: bool, label: str = "train", metrics: bool = True
    ) -> None:
        self.total = total
        self.enabled = enabled
        self.label = label
        self._bar: Progress | None = None
        self._task = None
        if enabled and _use_rich():
            metric_columns = (
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("lr {task.fields[lr]}"),
                TextColumn("{task.fields[speed]} img/s"),
            )
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                *(metric_columns if metrics else ()),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._task = self._bar.add_task(
                label, total=total, completed=start, loss="-", lr="-", speed="-"
            )

    def __enter__(self) -> TrainProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, iteration: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=iteration)

    def report(self, metrics: TrainMetrics, *, eta_s: float) -> None:
        if not self.enabled:
            return
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task,
                completed=metrics.iteration,
                loss=f"{metrics.loss:.4f}",
                lr=f"{metrics.lr:.2e}",
                speed=f"{metrics.images_per_s:.1f}",
            )
            return
        print(
            f"{self.label} {metrics.iteration}/{self.total} loss {metrics.loss:.4f} "
            f"lr {metrics.lr:.2e} {metrics.images_per_s:.1f} img/s "
            f"ETA {_format_duration(eta_s)}",
            file=sys.stderr,
            flush=True,
        )


def _format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
