"""The names the report layer answers to, importable without pandas (CLI choices, manifests):
the table kinds (`TABLES`, keys = `rmi_cli.manifest.schema.TableKind`) and output formats."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

from rmi_cli.registry import Registry
from rmi_cli.stored import EvaluationRecord

if TYPE_CHECKING:
    from rmi_cli.report.table import ReportTable

TableKind = Literal["methods", "per-class", "ablation"]  # the keys of TABLES (tested)
Format = Literal["rich", "markdown", "latex", "html", "csv", "json"]
FORMATS: tuple[str, ...] = get_args(Format)

TableBuilder = Callable[..., "ReportTable"]
# Lazy: the builders import pandas when a table is built, not when a choice is listed.
TABLES: Registry[TableBuilder] = Registry("table kind")
TABLES.register_lazy("methods", "rmi_cli.report.methods:methods_table")
TABLES.register_lazy("per-class", "rmi_cli.report.per_class:per_class_table")
TABLES.register_lazy("ablation", "rmi_cli.report.ablation:ablation_table")


def build_table(kind: str, rows: Sequence[EvaluationRecord], /, **options: Any) -> ReportTable:
    """`TABLES.get(kind)(rows, **options)`; an unknown kind is an `UnknownName` listing the
    known. `rows` is positional-only: the ablation table takes a `rows=` option of its own."""
    return TABLES.get(kind)(rows, **options)
