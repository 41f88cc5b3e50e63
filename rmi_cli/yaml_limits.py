"""Bounds on YAML the user hands us (manifests, `--set` values, a dataset's classes.yaml).

PyYAML builds whatever a document describes: a few hundred bytes of nested anchors and aliases
(a "billion laughs") expand to billions of nodes and end in `MemoryError` after a minute, and a
few hundred nested `[` overflow the composer's recursion with a 3,000-line traceback. Both are
caught here from the event stream, which PyYAML produces without recursion and without expanding
anything, so the check costs one linear pass over the text before a single node is built.
"""

from __future__ import annotations

from typing import Any

from rmi_cli.errors import ConfigError, UserError

# A manifest nests about six levels (experiments.E.runs.R.loss.radius) and the paper's has a few
# thousand nodes; these bounds are far above any real file and far below a runaway one.
MAX_DEPTH = 64
MAX_NODES = 200_000


def check_yaml_limits(
    text: str,
    where: str,
    *,
    error: type[UserError] = ConfigError,
    what: str = "the manifest",
    with_line: bool = True,
) -> None:
    """Raise `error` (one line naming `where`, and the line when `with_line`) when `text` nests
    deeper than MAX_DEPTH, expands (aliases included) to more than MAX_NODES nodes, or holds an
    alias inside the node it names. Syntax errors are left to the loader, which reports them."""
    import yaml  # here only: the data layer calls this and must not import yaml at start-up

    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, running total when it opened)
    total = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            total += _node_count(event, sizes)
            line = event.start_mark.line + 1 if event.start_mark is not None else 0
            at = f"{where}:{line}" if with_line else where
            if total > MAX_NODES:
                raise error(
                    f"{at}: {what} expands to more than {MAX_NODES:,} values (anchors "
                    f"and aliases are expanded: `*name` copies what `&name` marks); write the "
                    f"values out or use fewer aliases"
                )
            if isinstance(event, yaml.AliasEvent) and event.anchor in _open(open_nodes):
                raise error(
                    f"{at}: {what} has the alias *{event.anchor} inside the node "
                    f"&{event.anchor} it copies, which never ends; copy a finished node instead"
                )
            if isinstance(event, yaml.CollectionStartEvent):
                open_nodes.append((event.anchor, total))
                if len(open_nodes) > MAX_DEPTH:
                    raise error(f"{at}: {what} nests more than {MAX_DEPTH} levels deep; flatten it")
            elif isinstance(event, yaml.CollectionEndEvent) and open_nodes:
                anchor, start = open_nodes.pop()
                if anchor is not None:
                    sizes[anchor] = total - start + 1
    except yaml.YAMLError:
        return  # reported by the loader, with the line and the problem


def _open(open_nodes: list[tuple[str | None, int]]) -> set[str]:
    return {anchor for anchor, _ in open_nodes if anchor is not None}


def _node_count(event: Any, sizes: dict[str, int]) -> int:
    """How many nodes `event` adds to the expanded document."""
    import yaml

    if isinstance(event, yaml.AliasEvent):
        return sizes.get(event.anchor or "", 1)
    if isinstance(event, yaml.ScalarEvent):
        if event.anchor is not None:
            sizes[event.anchor] = 1
        return 1
    return 1 if isinstance(event, yaml.CollectionStartEvent) else 0
