"""Statistics over seeds, row order, deltas against a baseline, and the best cells.

Runs that differ only in their seed form one table row: same group, method, post-processing and
grid coordinates (`frames.KEY`). Values are the mean and the sample standard deviation
(ddof = 1, so one seed has no std) over the seeds that have a result; `n` counts those seeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence, Sized
from typing import Any

import pandas as pd

from rmi_cli.report.frames import KEY, PENDING_CRF
from rmi_cli.report.table import Column

# The paper's order of rows: its Table 1 lists CE, BCE, the CE & CRF rows, Affinity, RMI.
GROUP_ORDER = ("DeepLabv3", "DeepLabv3+")
METHOD_ORDER = ("CE", "BCE", "& CRF", "Affinity", "RMI")
FAMILY_KEY = ["group", "method", "params_key", "family"]


def over_seeds(
    scores: pd.DataFrame, values: Sequence[str], everything: pd.DataFrame
) -> pd.DataFrame:
    """One row per `KEY` of `scores`: `<v>`, `<v>_std`, `<v>_n` for each value column, `n`
    (seeds with a result), `runs` (runs of that method and setting, all splits, among plain
    or CRF runs as the row is) and `missing` ("run: status" of those without a result here)."""
    keys = scores[scores["postprocess"] != PENDING_CRF].drop_duplicates(KEY)
    keys = keys[[*KEY, "label", "crf_iters", "params", "from_scratch"]]
    evaluated = scores[scores["evaluated"]]
    grouped = evaluated.groupby(KEY, sort=False)[list(values)]
    stats = pd.concat(
        [grouped.mean(), grouped.std(ddof=1).add_suffix("_std"), grouped.count().add_suffix("_n")],
        axis=1,
    )
    done = evaluated.groupby(KEY, sort=False)["run"].unique().rename("done")
    out = keys.merge(stats.reset_index(), on=KEY, how="left")
    out = out.merge(done.reset_index(), on=KEY, how="left")
    # a CRF job is its own run (beside the run it post-processes): expected only on CRF rows
    expected = everything.assign(family=family(everything)).groupby(FAMILY_KEY)["run"].unique()
    status = dict(zip(everything["run"], everything["status"], strict=True))
    wanted = [
        expected.get(tuple(k), ())
        for k in out.assign(family=family(out))[FAMILY_KEY].itertuples(index=False)
    ]
    out["n"] = [len(d) if isinstance(d, Sized) else 0 for d in out["done"]]
    out["runs"] = [len(w) for w in wanted]
    out["missing"] = [_missing(w, d, status) for w, d in zip(wanted, out["done"], strict=True)]
    return out.drop(columns="done").reset_index(drop=True)


def family(frame: pd.DataFrame) -> list[str]:
    """The row family: "none" for plain evaluation rows, "crf" for CRF rows and CRF jobs."""
    return ["none" if p == "none" else "crf" for p in frame["postprocess"]]


def _missing(expected: Iterable[str], done: Any, status: dict[str, str]) -> list[str]:
    have = set(done) if isinstance(done, Iterable) else set()
    return [f"{run}: {_why(status[run])}" for run in expected if run not in have]


def _why(status: str) -> str:
    return "done, but no result here" if status == "done" else status


def order_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Sort rows as the paper does: groups, then methods (CE, BCE, CRF, Affinity, RMI, others
    in order of appearance), CRF rows by iteration count; stable otherwise."""
    groups = list(dict.fromkeys(frame["group"]))
    methods = list(dict.fromkeys(frame["method"]))
    keys = pd.DataFrame(
        {
            "g": [_rank(g, GROUP_ORDER) for g in frame["group"]],
            "g2": [groups.index(g) for g in frame["group"]],
            "m": [
                _method_rank(m, p)
                for m, p in zip(frame["method"], frame["postprocess"], strict=True)
            ],
            "m2": [methods.index(m) for m in frame["method"]],
            "c": frame["crf_iters"].fillna(-1).to_numpy(),
        },
        index=frame.index,
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def _rank(value: str, order: Sequence[str]) -> int:
    return order.index(value) if value in order else len(order)


def _method_rank(method: str, postprocess: str) -> int:
    return _rank("& CRF", METHOD_ORDER) if postprocess != "none" else _rank(method, METHOD_ORDER)


def add_delta(frame: pd.DataFrame, *, value: str, baseline: str, key: str = "delta") -> bool:
    """Add `key` = value minus the baseline row's value (same source and group, no
    post-processing, params agreeing where both set them). False when no row has a baseline."""
    deltas: list[float] = []
    for _, row in frame.iterrows():
        match = baseline_row(frame, row, baseline)
        deltas.append(float("nan") if match is None else row[value] - match[value])
    frame[key] = deltas
    return bool(pd.Series(deltas, dtype=float).notna().any())


def baseline_row(frame: pd.DataFrame, row: pd.Series, baseline: str) -> pd.Series | None:
    """The row `row` is compared with: the baseline method's plain row of the same source and
    group whose params agree (exactly, if one does), or None."""
    same = (
        (frame["source"] == row["source"])
        & (frame["group"] == row["group"])
        & (frame["method"] == baseline)
        & (frame["postprocess"] == "none")
    )
    candidates = [c for _, c in frame[same].iterrows() if _agree(c["params"], row["params"])]
    exact = [c for c in candidates if c["params"] == row["params"]]
    return (exact or candidates or [None])[0]


def _agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(
        json.dumps(a[k], default=str) == json.dumps(b[k], default=str) for k in a.keys() & b.keys()
    )


def best_cells(
    frame: pd.DataFrame, columns: Sequence[Column], section: str | None
) -> frozenset[tuple[int, str]]:
    """(row, column) of the best of our rows per column (per `section` block), ties included,
    compared at display precision; a block whose values are all equal has no best."""
    ours = frame["source"] == "ours"
    blocks = (
        [frame.index] if section is None else frame.groupby(section, sort=False).groups.values()
    )
    best: set[tuple[int, str]] = set()
    for column in (c for c in columns if c.better is not None):
        for index in blocks:
            values = (
                frame.loc[index, column.key][ours.loc[index]].astype(float).round(column.decimals)
            )
            values = values.dropna()
            if values.nunique() < 2:
                continue  # one value, or all equal: nothing stands out
            target = values.max() if column.better == "max" else values.min()
            best |= {(int(i), column.key) for i in values.index[values == target]}
    return frozenset(best)
