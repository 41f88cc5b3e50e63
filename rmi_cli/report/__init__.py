"""The paper's tables from stored results: rows in, `ReportTable` out, rendered five ways.

```python
table = build_table("methods", rows, split="val", baseline="CE", reference=True)
print(render(table, "markdown"))
```

Pure pandas (no torch, no SQL): `rows` are the dicts `rmi_cli.db` reads for an experiment.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rmi_cli.errors import UserError
from rmi_cli.report.ablation import ablation_table
from rmi_cli.report.frames import class_iou_frame, scores_frame
from rmi_cli.report.methods import methods_table
from rmi_cli.report.paper import paper_results
from rmi_cli.report.per_class import per_class_table
from rmi_cli.report.render import FORMATS, Format, render
from rmi_cli.report.table import Column, ReportTable

# Keys are the manifest's table kinds (`rmi_cli.manifest.schema.TableKind`) and `--kind` values.
TABLES: dict[str, Callable[..., ReportTable]] = {
    "methods": methods_table,
    "per-class": per_class_table,
    "ablation": ablation_table,
}


def build_table(kind: str, rows: Sequence[Mapping[str, Any]], /, **options: Any) -> ReportTable:
    """`TABLES[kind](rows, **options)`; an unknown kind is a `UserError` naming the known.
    `rows` is positional-only: the ablation table takes a `rows=` option of its own."""
    if kind not in TABLES:
        raise UserError(f"unknown table kind {kind!r}; known: {', '.join(TABLES)}")
    return TABLES[kind](rows, **options)


__all__ = [
    "FORMATS",
    "TABLES",
    "Column",
    "Format",
    "ReportTable",
    "ablation_table",
    "build_table",
    "class_iou_frame",
    "methods_table",
    "paper_results",
    "per_class_table",
    "render",
    "scores_frame",
]
