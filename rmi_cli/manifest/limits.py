"""What a planned experiment must be besides valid runs: not too large, and without two runs
of one name or one configuration.

The size is counted before any run is built: a grid of ten axes of ten values is ten billion
runs, which would take hours to plan and could never be trained. Names and configurations are
checked once the runs are built: two grid values that read the same (`3` and `"3"`) named one
run twice (a traceback from the queue, and a new empty database left behind), and two runs
that compute the same thing (3 and 3.0, or a grid over `train.device`) were one run shown
twice in every table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rmi_cli.errors import ConfigError
from rmi_cli.manifest.schema import ExperimentSpec

if TYPE_CHECKING:
    from rmi_cli.manifest.loader import PlannedCRF, PlannedRun

# More runs than any GPU budget covers; beyond it planning itself would take minutes.
MAX_RUNS = 10_000


def check_size(spec: ExperimentSpec, experiment: str, at: str) -> None:
    """Refuse (naming `at`, the file and line of its grid) an experiment of over MAX_RUNS runs."""
    points = sum(math.prod(len(values) for values in axes.values()) for axes in spec.grids())
    count = max(len(spec.runs), 1) * max(points, 1) * len(spec.seeds or [None])
    if count > MAX_RUNS:
        raise ConfigError(
            f"{at}: experiment {experiment!r} has {count:,} runs (runs x grid points x seeds); "
            f"at most {MAX_RUNS:,} fit one experiment: split the grid into several experiments"
        )


def check_distinct(
    runs: Sequence[PlannedRun], steps: Sequence[PlannedCRF], experiment: str, at: str
) -> None:
    """Every run and CRF step has its own name, every run its own configuration hash."""
    names: dict[str, str] = {}
    named = [(run.name, _origin(run)) for run in runs] + [(s.name, "a CRF step") for s in steps]
    for name, origin in named:
        if name in names:
            raise ConfigError(
                f"{at}: experiment {experiment!r}: two runs are named {name!r} ({names[name]} "
                f'and {origin}); make the values distinct (3 and "3" read the same)'
            )
        names[name] = origin
    hashes: dict[str, PlannedRun] = {}
    for run in runs:
        twin = hashes.setdefault(run.config_hash, run)
        if twin is not run:
            raise ConfigError(
                f"{at}: experiment {experiment!r}: runs {twin.name!r} and {run.name!r} compute "
                f"the same thing (configuration {run.config_hash}; they differ only in how a "
                f"value is written or in settings such as train.device that do not change "
                f"results); keep one"
            )


def _origin(run: PlannedRun) -> str:
    point = ", ".join(f"{key}: {value!r}" for key, value in run.params.items())
    return f"entry {run.entry!r}" + (f" at {{{point}}}" if point else "")
