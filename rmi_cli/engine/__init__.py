"""The training and evaluation engine: a `RunConfig` in, result records out (no DB, no CLI).

`train_run` and `evaluate_run` are the entry points. They are resolved on first use, so that
importing a small part (the schedule, the checkpoint reader) does not pull in every model,
dataset and loss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rmi_cli.engine.evaluate import evaluate_run
    from rmi_cli.engine.train import train_run

__all__ = ["evaluate_run", "train_run"]


def __getattr__(name: str) -> Any:
    if name == "train_run":
        from rmi_cli.engine.train import train_run

        return train_run
    if name == "evaluate_run":
        from rmi_cli.engine.evaluate import evaluate_run

        return evaluate_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
