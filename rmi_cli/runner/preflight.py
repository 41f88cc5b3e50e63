"""Checks before queueing work: a dataset this machine cannot open is a one-line error now
(exit 2, nothing queued), not a failed run in the database later; so is a weights file that
runs starting here cannot read (`check_weights`). Runs queued for other machines, and the dry
run, only get a warning (`weights_warnings`): variables expand on the machine that runs the
job."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rmi_cli.config import PRETRAINED_IMAGENET, DataConfig, expand_path, unset_variables
from rmi_cli.errors import ConfigError
from rmi_cli.manifest import ExperimentPlan, Manifest


def check_datasets(needs: Iterable[tuple[DataConfig, str]]) -> None:
    """Open every (dataset, split) once: its root, split list and listed files must exist.
    Raises the data layer's `DataError` (a `UserError`) naming what is missing."""
    from rmi_cli.data import build_dataset  # torch: only for commands that run work here

    seen: set[tuple[str, str]] = set()
    for data, split in needs:
        key = (data.model_dump_json(), split)
        if key not in seen:
            seen.add(key)
            build_dataset(data, split)


def missing_roots(datasets: Iterable[DataConfig]) -> list[str]:
    """Dataset roots (as they expand here) that do not exist on this machine, each once."""
    missing: dict[str, None] = {}
    for data in datasets:
        root = data.resolved_root() if data.root else None
        if root is not None and not Path(root).is_dir():
            missing[str(root)] = None
    return list(missing)


@dataclass(frozen=True)
class MissingWeights:
    """A `model.pretrained` value that cannot be read on this machine, and the runs it fails."""

    written: str  # as the manifest writes it, e.g. "${RMI_RESNET101_DEEP_STEM}"
    unset: tuple[str, ...]  # its variables that are unset here (empty: the file is missing)
    runs: tuple[str, ...]

    def problem(self) -> str:
        if self.unset:
            names = ", ".join(f"${{{name}}}" for name in self.unset)
            verb = "is" if len(self.unset) == 1 else "are"
            return f"reads {names}, which {verb} not set on this machine"
        return f"is {expand_path(self.written)}, which does not exist on this machine"


def missing_weights(plan: ExperimentPlan) -> list[MissingWeights]:
    """The weights files the plan's runs need that this machine cannot read, by value."""
    found: dict[str, list[str]] = {}
    for run in plan.runs:
        source = run.config.model.pretrained
        if source is None or source == PRETRAINED_IMAGENET:
            continue
        if unset_variables(source) or not Path(expand_path(source)).is_file():
            found.setdefault(source, []).append(run.name)
    return [
        MissingWeights(written, tuple(unset_variables(written)), tuple(runs))
        for written, runs in found.items()
    ]


def scratch_twins(manifest: Manifest, experiment: str, overrides: Sequence[str]) -> list[str]:
    """The experiments that extend `experiment` and read no weights file: the same grid from
    random initialisation (the manifest's `-scratch` twins)."""
    twins = []
    for child in manifest.children(experiment):
        runs = manifest.plan(child, overrides).runs
        if runs and all(run.config.model.pretrained is None for run in runs):
            twins.append(child)
    return twins


def weights_warnings(plan: ExperimentPlan) -> list[str]:
    """One line per weights file the plan's runs cannot read here, naming the plan's
    from-scratch twins (`ExperimentPlan.scratch_twins`) when it has some."""
    return [weights_message(plan, entry) for entry in missing_weights(plan)]


def check_weights(plan: ExperimentPlan) -> None:
    """For runs that start on this machine: a weights file they cannot read here is a
    `ConfigError` now, before anything is queued (it would fail every run later)."""
    messages = weights_warnings(plan)
    if messages:
        raise ConfigError(f"{messages[0]} (--workers 0 only queues them, for other machines)")


def weights_message(plan: ExperimentPlan, missing: MissingWeights) -> str:
    """One line: which runs, what is missing, and what to do (set it, or run the twin)."""
    count = len(missing.runs)
    text = (
        f"model.pretrained of {count} run{'s' if count != 1 else ''} of {plan.name} "
        f"{missing.problem()}: they fail where the file cannot be read. Set it to the weights "
        f"file on the machines that run them"
    )
    if plan.scratch_twins:
        text += (
            f", or train the same grid from random initialisation: rmi ablate {plan.manifest} "
            f"-e {' / -e '.join(plan.scratch_twins)}"
        )
    return text
