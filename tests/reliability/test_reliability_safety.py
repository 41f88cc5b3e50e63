"""Safety rules, checked on the source (the syntax tree, so that calls split over lines count):
checkpoints load with `weights_only=True`, YAML only through the safe loader, and no SQL text
built from strings. The corpus (test_reliability_bad_inputs.py) checks the first two at run
time as well: a checkpoint and a manifest that would run code are refused without running it."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(REPO / "rmi_cli").rglob("*.py"), *(REPO / "migrations").rglob("*.py")])
TORCH_LOADS = {"torch.load", "torch.serialization.load"}
UNPICKLERS = {"pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "dill.loads"}
UNSAFE_YAML = {"load", "load_all", "full_load", "full_load_all", "unsafe_load", "unsafe_load_all"}
UNSAFE_YAML |= {"Loader", "FullLoader", "UnsafeLoader", "add_constructor"}
YAML_NAMES = {f"yaml.{name}" for name in UNSAFE_YAML}
RAW_SQL_CALLS = {"exec_driver_sql", "executescript", "text"}  # their argument is SQL text
SQL_CALLS = RAW_SQL_CALLS | {"execute", "executemany"}


def dotted(node: ast.AST) -> str:
    """`torch.serialization.load` for an attribute chain; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        prefix = dotted(node.value)
        return f"{prefix}.{node.attr}" if prefix else ""
    return ""


def calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def unsafe_loads(tree: ast.AST) -> list[int]:
    """Lines of torch.load without weights_only=True, of unpicklers, and of imports that would
    hide either under another name."""
    lines = []
    for call in calls(tree):
        name = dotted(call.func)
        if name in TORCH_LOADS:
            value = {k.arg: k.value for k in call.keywords}.get("weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                lines.append(call.lineno)
        elif name in UNPICKLERS:
            lines.append(call.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "pickle", "dill"):
            lines += [node.lineno for a in node.names if a.name in ("load", "loads", "Unpickler")]
    return lines


def unsafe_yaml(tree: ast.AST) -> list[int]:
    """Lines that use a YAML loader that can build arbitrary Python objects."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and f"{dotted(node.value)}.{node.attr}" in YAML_NAMES:
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "yaml":
            lines += [node.lineno for a in node.names if a.name in UNSAFE_YAML]
    return lines


def _built_from_strings(node: ast.AST) -> bool:
    """An f-string, `+` or `%`, or `.format(...)`: text made at run time."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return True
    return isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "format"


def _static(node: ast.AST) -> bool:
    """A string written in the source, or a choice between two such strings."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return isinstance(node, ast.IfExp) and _static(node.body) and _static(node.orelse)


def sql_from_strings(tree: ast.AST) -> list[int]:
    """Lines that execute SQL text made from strings at run time. Statements are SQLAlchemy
    constructs with bound parameters; raw SQL (`text`, `exec_driver_sql`) must be a literal."""
    lines = []
    for call in calls(tree):
        name = dotted(call.func).rpartition(".")[2] or getattr(call.func, "id", "")
        if name not in SQL_CALLS or not call.args:
            continue
        sql = call.args[0]
        if _built_from_strings(sql) or (name in RAW_SQL_CALLS and not _static(sql)):
            lines.append(call.lineno)
    return lines


RULES: dict[str, Callable[[ast.AST], list[int]]] = {
    "torch-load-weights-only": unsafe_loads,
    "yaml-safe-load-only": unsafe_yaml,
    "no-sql-from-strings": sql_from_strings,
}
# Code that breaks each rule: the checks must catch every line of it.
BROKEN = {
    "torch-load-weights-only": [
        "torch.load(path)",
        "torch.load(\n    path,\n    weights_only=False,\n)",
        "state = torch.serialization.load(path, map_location='cpu')",
        "pickle.loads(data)",
        "from torch import load",
    ],
    "yaml-safe-load-only": [
        "yaml.load(text, Loader=yaml.SafeLoader)",
        "yaml.unsafe_load(text)",
        "yaml.safe_load(text, Loader=yaml.FullLoader)",
        "from yaml import load",
    ],
    "no-sql-from-strings": [
        "session.execute(f'SELECT * FROM runs WHERE id = {run_id}')",
        "conn.exec_driver_sql('PRAGMA ' + pragma)",
        "conn.exec_driver_sql(query)",
        "session.execute(text('DELETE FROM runs WHERE name = %s' % name))",
        "session.execute(text(query))",
        "cursor.execute('SELECT {}'.format(column))",
    ],
}


def test_the_sources_are_found() -> None:
    assert len(SOURCES) > 50
    assert any(path.name == "checkpoint.py" for path in SOURCES)


@pytest.mark.parametrize("rule", RULES)
def test_the_source_keeps_the_rule(rule: str) -> None:
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        offenders += [f"{path.relative_to(REPO)}:{line}" for line in RULES[rule](tree)]
    assert offenders == []


@pytest.mark.parametrize("rule", RULES)
def test_the_check_catches_code_that_breaks_the_rule(rule: str) -> None:
    for snippet in BROKEN[rule]:
        assert RULES[rule](ast.parse(snippet)), snippet
    safe = "torch.load(p, weights_only=True)\nyaml.safe_load(t)\nsession.execute(select(Run))\n"
    assert RULES[rule](ast.parse(safe)) == []


def test_checkpoints_are_loaded_somewhere() -> None:
    """The rule is not vacuous: the engine and the models do load checkpoints."""
    found = [
        path.name
        for path in SOURCES
        if any(dotted(c.func) in TORCH_LOADS for c in calls(ast.parse(path.read_text())))
    ]
    assert {"checkpoint.py", "pretrained.py"} <= set(found)
