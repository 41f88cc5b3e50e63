"""Load a manifest and plan its experiments into runs and CRF steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rmi_cli.config import CRFConfig, RunConfig, canonical_hash
from rmi_cli.errors import ConfigError
from rmi_cli.manifest.explain import describe, first_error, strip_union_tags
from rmi_cli.manifest.plan import (
    Layer,
    dotted_layer,
    grid_points,
    merge_layers,
    point_suffix,
    validate_run,
    yaml_layer,
)
from rmi_cli.manifest.schema import (
    RUN_META_KEYS,
    ExperimentSpec,
    ManifestSpec,
    TableSpec,
)
from rmi_cli.manifest.source import Source, dotted, parse_source, read_source

METHOD_LABELS = {"ce": "CE", "bce": "BCE", "rmi": "RMI", "aaf": "Affinity"}
GROUP_LABELS = {"deeplabv3": "DeepLabv3", "deeplabv3plus": "DeepLabv3+"}


@dataclass(frozen=True)
class PlannedRun:
    """One training + evaluation run of an experiment, fully resolved."""

    experiment: str
    name: str  # unique within the experiment, e.g. "rmi-pool=avg-pool_size=4-s1"
    entry: str  # the key of `runs` it came from
    label: str  # the method, as tables show it ("RMI")
    group: str  # the model family, as tables group it ("DeepLabv3")
    params: dict[str, Any]  # the grid coordinates (dotted keys)
    config: RunConfig

    @property
    def config_hash(self) -> str:
        return self.config.canonical_hash()


@dataclass(frozen=True)
class PlannedCRF:
    """A dense-CRF step over one run's probabilities."""

    experiment: str
    target: PlannedRun
    crf: CRFConfig
    split: str

    @property
    def name(self) -> str:
        """`<run>+crf`, or `<run>+crf@<split>` on a split other than the run's own: one step per
        (run, split) in the experiment, whose iteration counts grow when more are asked for."""
        if self.split == self.target.config.data.eval_split:
            return f"{self.target.name}+crf"
        return f"{self.target.name}+crf@{self.split}"

    def job_config(self) -> dict[str, Any]:
        """What the CRF job computes: stored with it and hashed for idempotent queueing."""
        return {
            "kind": "crf",
            "on": self.target.config_hash,
            "split": self.split,
            "crf": self.crf.model_dump(mode="json"),
        }

    @property
    def config_hash(self) -> str:
        return canonical_hash(self.job_config())


@dataclass(frozen=True)
class ExperimentPlan:
    """Everything `rmi ablate` needs to queue one experiment."""

    manifest: str
    name: str
    description: str
    runs: tuple[PlannedRun, ...]
    crf_steps: tuple[PlannedCRF, ...]
    tables: tuple[TableSpec, ...]
    # The experiments extending this one that train the same grid from random initialisation
    # (filled in by `runner.plan_experiment`, for messages about weights files; else empty).
    scratch_twins: tuple[str, ...] = ()

    def run(self, name: str) -> PlannedRun:
        for run in self.runs:
            if name in (run.name, run.entry) and (name == run.name or self._unique(name)):
                return run
        known = ", ".join(r.name for r in self.runs)
        raise ConfigError(
            f"{self.manifest}: experiment {self.name!r} has no run {name!r}; known: {known}"
        )

    def _unique(self, entry: str) -> bool:
        return sum(r.entry == entry for r in self.runs) == 1


@dataclass(frozen=True)
class _Resolved:
    """An experiment with what it inherits: `chain` runs from the root of its `extends` to it;
    `owners` names the experiment that wrote each inherited field."""

    spec: ExperimentSpec
    chain: tuple[str, ...]
    owners: dict[str, str]

    def owner(self, field: str, default: str) -> str:
        return self.owners.get(field, default)


class Manifest:
    """A parsed, structurally validated manifest file."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.path = source.file
        self.spec = _validate_structure(source)

    @property
    def experiment_names(self) -> list[str]:
        return list(self.spec.experiments)

    def plan(self, experiment: str, overrides: Sequence[str] = ()) -> ExperimentPlan:
        """Resolve and validate every run of `experiment`, with `--set` overrides applied."""
        resolved = self._resolve(experiment)
        spec = resolved.spec
        set_layer = override_layer(overrides)
        runs = tuple(self._runs(experiment, resolved, set_layer))
        steps = tuple(self._crf_steps(experiment, resolved, runs))
        return ExperimentPlan(
            self.path, experiment, spec.description, runs, steps, tuple(spec.tables)
        )

    def children(self, experiment: str) -> list[str]:
        """The experiments that extend `experiment` directly, in manifest order."""
        return [name for name, spec in self.spec.experiments.items() if spec.extends == experiment]

    def _experiment(self, name: str) -> ExperimentSpec:
        if name not in self.spec.experiments:
            known = ", ".join(self.spec.experiments) or "none"
            raise ConfigError(f"{self.path}: no experiment {name!r}; the manifest defines: {known}")
        return self.spec.experiments[name]

    def _resolve(self, name: str) -> _Resolved:
        """`name` with what it inherits through `extends`, and which experiment wrote each field."""
        self._experiment(name)  # an unknown name lists the known ones
        chain: list[str] = []
        current: str | None = name
        while current is not None:
            if current in chain:
                loop = " -> ".join([*chain, current])
                raise ConfigError(f"{self._extends_at(chain[-1])}: extends loops ({loop})")
            if current not in self.spec.experiments:
                known = ", ".join(self.spec.experiments)
                raise ConfigError(
                    f"{self._extends_at(chain[-1])}: experiments.{chain[-1]}.extends: expected "
                    f"one of this manifest's experiments ({known}); found {current!r}"
                )
            chain.append(current)
            current = self.spec.experiments[current].extends
        chain.reverse()  # the root first: later entries win
        fields: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for link in chain:
            spec = self.spec.experiments[link]
            for key in spec.model_fields_set - {"defaults", "extends"}:
                fields[key], owners[key] = getattr(spec, key), link
        merged = self.spec.experiments[name].model_copy(update=fields)
        return _Resolved(merged, tuple(chain), owners)

    def _extends_at(self, experiment: str) -> str:
        line = self.source.line_of(("experiments", experiment, "extends"))
        return f"{self.path}:{line}"

    def _runs(self, experiment: str, resolved: _Resolved, set_layer: Layer) -> list[PlannedRun]:
        spec = resolved.spec
        prefix = ("experiments", resolved.owner("runs", experiment))
        base = [yaml_layer(self.source, self.spec.defaults, ("defaults",))]
        for link in resolved.chain:
            defaults = self.spec.experiments[link].defaults
            base.append(yaml_layer(self.source, defaults, ("experiments", link, "defaults")))
        planned: list[PlannedRun] = []
        for entry, raw in (spec.runs or {"run": {}}).items():
            overrides = dict(raw or {})
            meta = {key: overrides.pop(key) for key in RUN_META_KEYS if key in overrides}
            entry_layer = yaml_layer(self.source, overrides, (*prefix, "runs", entry))
            for point in grid_points(spec.grids()):
                grid_layer = self._grid_layer(resolved.owner("grid", experiment), spec, point)
                seeds: Sequence[int | None] = spec.seeds or [None]
                for seed in seeds:
                    name = entry + point_suffix(point) + (f"-s{seed}" if seed is not None else "")
                    seed_layer = dotted_layer({"seed": seed} if seed is not None else {}, "", {})
                    layers = [*base, entry_layer, grid_layer, seed_layer, set_layer]
                    entry_line = self.source.line_of((*prefix, "runs", entry))
                    fallback = f"{self.path}:{entry_line}"
                    config = validate_run(merge_layers(layers), layers, name, fallback)
                    planned.append(_planned(experiment, name, entry, meta, point, config))
        return planned

    def _grid_layer(self, experiment: str, spec: ExperimentSpec, point: dict[str, Any]) -> Layer:
        grid_path: tuple[str | int, ...] = ("experiments", experiment, "grid")
        grids = spec.grids()
        owner = next((i for i, axes in enumerate(grids) if set(point) == set(axes)), 0)
        if isinstance(spec.grid, list):
            grid_path = (*grid_path, owner)
        lines = {k: self.source.lines.get((*grid_path, k), 0) for k in point}
        return dotted_layer(point, self.path, lines)

    def _crf_steps(
        self, experiment: str, resolved: _Resolved, runs: tuple[PlannedRun, ...]
    ) -> list[PlannedCRF]:
        steps: list[PlannedCRF] = []
        for step in resolved.spec.crf_steps():
            targets = [run for run in runs if run.entry == step.on]
            if not targets:
                owner = resolved.owner("crf", experiment)
                line = self.source.line_of(("experiments", owner, "crf"))
                known = ", ".join(dict.fromkeys(run.entry for run in runs))
                raise ConfigError(
                    f"{self.path}:{line}: experiments.{owner}.crf.on: expected one of the "
                    f"experiment's runs ({known}); found {step.on!r}"
                )
            params = CRFConfig(**step.model_dump(exclude={"on", "split"}))
            for run in targets:
                split = step.split or run.config.data.eval_split
                steps.append(PlannedCRF(experiment, run, params, split))
        return steps


def _planned(
    experiment: str,
    name: str,
    entry: str,
    meta: dict[str, Any],
    point: dict[str, Any],
    config: RunConfig,
) -> PlannedRun:
    label = str(meta.get("label") or METHOD_LABELS[config.loss.name])
    group = str(meta.get("group") or GROUP_LABELS[config.model.name])
    return PlannedRun(experiment, name, entry, label, group, dict(point), config)


def _validate_structure(source: Source) -> ManifestSpec:
    if not isinstance(source.data, dict):
        raise ConfigError(
            f"{source.file}:1: expected a mapping with `experiments:` at the top; found "
            f"{'an empty file' if source.data is None else type(source.data).__name__}"
        )
    try:
        return ManifestSpec.model_validate(source.data)
    except ValidationError as exc:
        err = first_error(exc)
        loc = strip_union_tags(tuple(err["loc"]), ManifestSpec)
        line = source.line_of(loc)
        raise ConfigError(
            f"{source.file}:{line}: {dotted(loc)}: {describe(err, ManifestSpec)}"
        ) from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and structurally validate the manifest at `path`."""
    return Manifest(read_source(Path(path)))


def manifest_from_text(text: str, name: str = "<manifest>") -> Manifest:
    """A manifest from a YAML string (tests, generated manifests)."""
    return Manifest(parse_source(text, name))


def override_layer(overrides: Sequence[str]) -> Layer:
    """`["loss.radius=5", "train.device=cuda:1"]` -> a layer; values are parsed as YAML scalars."""
    assignments: dict[str, Any] = {}
    for text in overrides:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(
                f"--set {text!r}: expected KEY=VALUE with a dotted key such as loss.radius=5"
            )
        try:
            assignments[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            assignments[key] = raw
    where = "--set " + " ".join(overrides) if overrides else "--set"
    return dotted_layer(assignments, where, {})
