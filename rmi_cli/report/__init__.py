"""The paper's tables from stored results: rows in, `ReportTable` out, rendered five ways.

```python
table = build_table("methods", rows, split="val", baseline="CE", reference=True)
print(render(table, "markdown"))
```

Pure pandas (no torch, no SQL): `rows` are the records `rmi_cli.db` reads for an experiment.
Names are resolved on first use, so that `rmi_cli.report.kinds` (the table kinds and formats)
can be read without importing pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rmi_cli.report.ablation import ablation_table
    from rmi_cli.report.frames import class_iou_frame, scores_frame
    from rmi_cli.report.kinds import FORMATS, TABLES, Format, build_table
    from rmi_cli.report.methods import methods_table
    from rmi_cli.report.paper import paper_results
    from rmi_cli.report.per_class import per_class_table
    from rmi_cli.report.rendering import render
    from rmi_cli.report.table import Column, ReportTable

_HOMES = {
    "FORMATS": "kinds", "TABLES": "kinds", "Format": "kinds", "build_table": "kinds",
    "Column": "table", "ReportTable": "table", "ablation_table": "ablation",
    "class_iou_frame": "frames", "scores_frame": "frames", "methods_table": "methods",
    "paper_results": "paper", "per_class_table": "per_class", "render": "rendering",
}  # fmt: skip

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


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
