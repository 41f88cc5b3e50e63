"""Read a YAML manifest into plain Python data, remembering the line each value came from.

Errors about a manifest must name the file and the line; `yaml.safe_load` forgets both. We
compose the node tree with the safe loader and convert it ourselves, recording the line of every
mapping key and sequence item under its dotted path. Duplicate keys are errors here (YAML
silently keeps the last one, which hides typos in long manifests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rmi_cli.errors import ConfigError

Path_ = tuple[str | int, ...]


@dataclass
class Source:
    """A parsed YAML document and where each of its values was written."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)  # 1-based line of each path

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def read_source(path: Path) -> Source:
    """Parse the YAML file at `path` (safe loader) with line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: manifest not found; pass the path of an experiments YAML file "
            f"(`rmi init` writes a starter one)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the manifest ({exc}); check the file") from None
    return parse_source(text, str(path))


def parse_source(text: str, file: str) -> Source:
    """Parse YAML `text` (named `file` in messages) with line numbers."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        source = Source(file=file, data=None)
        source.data = _convert(loader, node, (), source) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}" if mark is not None else "?"
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"{file}:{line}: the manifest is not valid YAML ({problem}); fix the syntax there"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: the manifest is not valid YAML ({exc})") from None
    finally:
        loader.dispose()
    return source


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, source: Source) -> Any:
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            # Keys are names: take the scalar's text, so that YAML 1.1 does not turn `on:`
            # (as in `crf: {on: ce}`) or `yes:` into booleans.
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    f"{source.file}:{key_node.start_mark.line + 1}: a key must be a plain "
                    f"name; found a {key_node.id}"
                )
            key = str(key_node.value)
            child = (*path, key)
            if key in result:
                raise ConfigError(
                    f"{source.file}:{key_node.start_mark.line + 1}: duplicate key "
                    f"{dotted(child)!r} (first on line {source.lines[child]}); keep only one"
                )
            source.lines[child] = key_node.start_mark.line + 1
            result[key] = _convert(loader, value_node, child, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, (*path, index), source) for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def dotted(path: Path_) -> str:
    """`("experiments", "x", "runs", 0)` -> `"experiments.x.runs.0"`."""
    return ".".join(str(part) for part in path)
