"""Expand one experiment of a manifest into fully resolved, validated runs.

Every run is `defaults` <- experiment `defaults` <- the run entry <- one grid point <- the seed
<- `--set` overrides, merged in that order (later wins). A `loss` mapping whose `name` differs
from the inherited one replaces it instead of merging, because each loss has its own options.
When validation fails, the error names the layer (file and line, or the `--set` flag) that
wrote the offending value.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from rmi_cli.config import RunConfig
from rmi_cli.errors import ConfigError
from rmi_cli.manifest.explain import describe, first_error, strip_union_tags
from rmi_cli.manifest.source import Path_, Source, dotted

ConfigPath = tuple[str, ...]


@dataclass
class Layer:
    """One source of configuration values and where each was written."""

    data: dict[str, Any]
    where: str  # "experiments.yaml" or "--set loss.radius=12"
    lines: dict[ConfigPath, int] = field(default_factory=dict)

    def locate(self, path: ConfigPath) -> str | None:
        """`file:line` (or the flag) of the deepest prefix of `path` this layer sets."""
        for end in range(len(path), 0, -1):
            if _has_path(self.data, path[:end]):
                line = self.lines.get(path[:end])
                return f"{self.where}:{line}" if line is not None else self.where
        return None


def yaml_layer(source: Source, data: dict[str, Any], prefix: Path_) -> Layer:
    """A layer read from the manifest at YAML path `prefix`."""
    lines: dict[ConfigPath, int] = {}
    for path in _paths(data):
        line = source.lines.get((*prefix, *path))
        if line is not None:
            lines[path] = line
    return Layer(data=data, where=source.file, lines=lines)


def dotted_layer(assignments: dict[str, Any], where: str, lines: dict[str, int]) -> Layer:
    """A layer of dotted assignments (a grid point, a seed, or `--set` flags)."""
    data: dict[str, Any] = {}
    path_lines: dict[ConfigPath, int] = {}
    for key, value in assignments.items():
        path = tuple(key.split("."))
        set_path(data, path, value)
        if key in lines:
            path_lines[path] = lines[key]
    return Layer(data=data, where=where, lines=path_lines)


def merge_layers(layers: Sequence[Layer]) -> dict[str, Any]:
    """Deep-merge the layers' data, later layers winning."""
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge_into(merged, layer.data, ())
    return merged


def _merge_into(target: dict[str, Any], update: dict[str, Any], path: ConfigPath) -> None:
    for key, value in update.items():
        child = (*path, key)
        if _replaces_loss(target, child, value):
            target[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value, child)
        else:
            target[key] = copy.deepcopy(value)


def _replaces_loss(target: dict[str, Any], path: ConfigPath, value: Any) -> bool:
    inherited = target.get(path[-1])
    return (
        path == ("loss",)
        and isinstance(value, dict)
        and isinstance(inherited, dict)
        and "name" in value
        and value["name"] != inherited.get("name")
    )


def set_path(data: dict[str, Any], path: ConfigPath, value: Any) -> None:
    """Set a dotted path in nested dicts; changing `loss.name` drops the old loss's options."""
    node = data
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if path == ("loss", "name") and node.get("name", value) != value:
        node.clear()
    node[path[-1]] = value


def validate_run(
    config: dict[str, Any], layers: Sequence[Layer], run: str, fallback: str
) -> RunConfig:
    """Build the RunConfig or raise one ConfigError line naming where the bad value came from."""
    try:
        return RunConfig.model_validate(config)
    except ValidationError as exc:
        err = first_error(exc)
        loc = strip_union_tags(tuple(err["loc"]), RunConfig)
        path = tuple(str(part) for part in loc)
        where = next((w for layer in reversed(layers) if (w := layer.locate(path))), None)
        raise ConfigError(
            f"{where or fallback}: run {run!r}: {dotted(loc) or 'configuration'}: "
            f"{describe(err, RunConfig)}"
        ) from None


def grid_points(grids: list[dict[str, list[Any]]]) -> Iterator[dict[str, Any]]:
    """The union of the cartesian products of the grids (one empty point when no grid)."""
    seen: set[str] = set()  # a set, not a list of points: a big grid is not quadratic
    for axes in grids or [{}]:
        keys = list(axes)
        for values in itertools.product(*(axes[k] for k in keys)):
            point = dict(zip(keys, values, strict=True))
            key = repr(sorted(point.items()))
            if key not in seen:
                seen.add(key)
                yield point


def point_suffix(point: dict[str, Any]) -> str:
    """`{"loss.pool": "avg", "loss.pool_size": 4}` -> `"-pool=avg-pool_size=4"`."""
    shorts = [key.rsplit(".", 1)[-1] for key in point]
    keys = list(point) if len(set(shorts)) != len(shorts) else shorts
    # `model.name` and `loss.name` values are names already: "ce-deeplabv3plus", not "name=".
    parts = [
        _fmt(v) if k.endswith("name") else f"{k}={_fmt(v)}"
        for k, v in zip(keys, point.values(), strict=True)
    ]
    return "".join(f"-{part}" for part in parts)


def _fmt(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _has_path(data: dict[str, Any], path: ConfigPath) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _paths(data: dict[str, Any], prefix: ConfigPath = ()) -> Iterator[ConfigPath]:
    for key, value in data.items():
        path = (*prefix, str(key))
        yield path
        if isinstance(value, dict):
            yield from _paths(value, path)
