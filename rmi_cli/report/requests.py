"""Which tables an experiment shows: its manifest's `tables:` entries, flags on top, or the
kinds its results suggest."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rmi_cli.errors import UserError
from rmi_cli.records import IoUMetric
from rmi_cli.stored import EvaluationRecord, RunRecord


def default_kinds(records: Sequence[EvaluationRecord]) -> list[str]:
    """An ablation grid for experiments whose runs differ by grid values within one method;
    the methods table and the per-class table otherwise."""
    per_method: dict[tuple[Any, Any], set[str]] = {}
    for row in records:
        key = (row.method, row.group)
        per_method.setdefault(key, set()).add(repr(sorted((row.params or {}).items())))
    if any(len(settings) > 1 for settings in per_method.values()):
        return ["ablation"]
    return ["methods", "per-class"]


@dataclass(frozen=True)
class TableRequest:
    """One table to build: a manifest `tables:` entry, or the flags of `rmi table`."""

    kind: str
    split: str | None = None
    rows: str | None = None
    cols: str | None = None
    baseline: str | None = None
    title: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> TableRequest:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in spec.items() if key in names})

    def options(
        self,
        runs: Sequence[RunRecord],
        *,
        reference: bool = False,
        memory: bool = False,
        metric: str = "miou",
        intervals: bool = True,
    ) -> dict[str, Any]:
        """The keyword arguments of `build_table(self.kind, records, ...)`."""
        options: dict[str, Any] = {
            "runs": runs,
            "split": self.split,
            "reference": reference,
            "metric": metric,
            "intervals": intervals,
        }
        if self.title:
            options["title"] = self.title
        if self.kind == "ablation":
            return options | {"rows": self.rows, "cols": self.cols}
        options["baseline"] = self.baseline or "CE"
        if self.kind == "methods":
            options["memory"] = memory
        return options


def table_requests(
    declared: Sequence[Mapping[str, Any]],
    records: Sequence[EvaluationRecord],
    flags: TableRequest | None,
    kind: str | None,
) -> list[TableRequest]:
    """With --kind: that table alone, from the flags. Otherwise the experiment's declared
    tables (its manifest's `tables:`), or the kinds its rows suggest; a flag that was given
    (--split, --rows, --cols, --baseline) replaces the declared value in each."""
    if kind is not None:
        return [dataclasses.replace(flags or TableRequest(kind), kind=kind)]
    chosen = [TableRequest.from_spec(spec) for spec in declared]
    chosen = chosen or [TableRequest(name) for name in default_kinds(records)]
    if flags is None:
        return chosen
    given = {k: v for k, v in dataclasses.asdict(flags).items() if k != "kind" and v is not None}
    return [dataclasses.replace(request, **given) for request in chosen]


def check_metric(metric: str) -> None:
    """A --metric value the tables know, or a one-line `UserError`."""
    known = typing.get_args(IoUMetric)
    if metric not in known:
        raise UserError(f"--metric {metric!r}: unknown; known: {', '.join(known)}")
