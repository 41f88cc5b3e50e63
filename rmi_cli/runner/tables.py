"""The paper-style tables of an experiment, from the database (`rmi table`, the demo)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rmi_cli import db as store
from rmi_cli.errors import UserError

if TYPE_CHECKING:  # rmi_cli.report imports pandas: only where a table is built
    from rmi_cli.report import ReportTable


def tables(
    database: store.Database,
    experiment: str,
    *,
    kind: str | None = None,
    split: str | None = None,
    rows: str | None = None,
    cols: str | None = None,
    baseline: str | None = None,
    reference: bool = False,
    memory: bool = False,
    single: str | None = None,
    metric: str = "miou",
    intervals: bool = True,
) -> list[ReportTable]:
    """The tables the experiment's manifest declares (or those its results suggest), or the
    one `kind`; a given `split`, `rows`, `cols` or `baseline` replaces the declared value.
    `single` names an output that holds one table only (e.g. "--format csv"): choosing more is
    a `UserError` that says how to pick one. `metric`: "miou" or "boundary-iou"; `intervals`:
    the Δ columns' paired bootstrap intervals."""
    from rmi_cli.report import build_table
    from rmi_cli.report.requests import TableRequest, check_metric, table_requests

    check_metric(metric)

    records = store.evaluation_rows(database, experiment=experiment)
    runs = store.run_rows(database, experiment=experiment)
    methods = sorted({row.method for row in records} | {run.method for run in runs} - {""})
    if baseline is not None and methods and baseline not in methods:
        raise UserError(
            f"--baseline {baseline!r}: experiment {experiment!r} has no such method; its "
            f"methods: {', '.join(methods)}"
        )
    flags = TableRequest(kind or "", split, rows, cols, baseline)
    requests = table_requests(store.experiment_tables(database, experiment), records, flags, kind)
    if single is not None and len(requests) > 1:
        # Two CSV tables (or two JSON documents) one after the other parse as neither.
        names = " or ".join(dict.fromkeys(request.kind for request in requests))
        raise UserError(
            f"{single} writes one table and experiment {experiment!r} has "
            f"{len(requests)}; choose one with --kind ({names})"
        )
    return [
        build_table(
            r.kind,
            records,
            **r.options(
                runs, reference=reference, memory=memory, metric=metric, intervals=intervals
            ),
        )
        for r in requests
    ]
