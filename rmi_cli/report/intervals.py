"""Bootstrap intervals on table rows: each row's Δ vs its baseline row, and each ablation cell's
mIoU, from the per-image counts of the evaluations behind the row (`rmi_cli.report.bootstrap`).

A table row is one (group, method, post-processing, setting) over its seeds; its evidence is the
stack of its seeds' `ImageCounts` on the table's split, images aligned by name. Where evidence is
missing the interval is NaN and `<key>_why` says why; the notes say what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rmi_cli.records import ImageCounts, IoUMetric
from rmi_cli.report import bootstrap
from rmi_cli.report.frames import KEY
from rmi_cli.report.stats import baseline_row

NO_COUNTS = "no per-image counts"
OTHER_IMAGES = "evaluated on different images"
NOT_APPLICABLE = "n/a"


def row_evidence(
    scores: pd.DataFrame, row: pd.Series, metric: IoUMetric
) -> tuple[bootstrap.Evidence | None, tuple[str, ...], str]:
    """(evidence, image names, why none) of one table row: its evaluated seeds' counts."""
    same = np.logical_and.reduce([scores[k] == row[k] for k in KEY]) & scores["evaluated"]
    evaluations = scores[same].sort_values("seed", kind="stable", na_position="last")
    counts: Sequence[ImageCounts | None] = list(evaluations["counts"])
    if not counts:
        return None, (), NOT_APPLICABLE
    if any(c is None for c in counts):
        return None, (), NO_COUNTS
    names = counts[0].names  # type: ignore[union-attr]
    aligned = [_aligned(c, names) for c in counts if c is not None]
    if any(a is None for a in aligned):
        return None, (), OTHER_IMAGES
    pairs = [c.pair(metric) for c in aligned if c is not None]
    evidence = bootstrap.Evidence(
        np.stack([p[0] for p in pairs]),
        np.stack([p[1] for p in pairs]),
        tuple(int(s) if pd.notna(s) else -1 for s in evaluations["seed"]),
    )
    return evidence, names, ""


def _aligned(counts: ImageCounts, names: tuple[str, ...]) -> ImageCounts | None:
    """`counts` with its images in the order of `names`; None when the images differ."""
    if counts.names == names:
        return counts
    if sorted(counts.names) != sorted(names):
        return None
    position = {name: i for i, name in enumerate(counts.names)}
    order = [position[name] for name in names]
    return ImageCounts(names, counts.counts[order], counts.boundary_fraction)


def add_delta_intervals(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    baseline: str,
    metric: IoUMetric = "miou",
    key: str = "delta",
) -> None:
    """Add `<key>_lo`, `<key>_hi` (percentage points) and `<key>_why` to our rows with a Δ:
    the paired bootstrap interval of the row's mIoU minus its baseline row's. The baseline row
    itself gets none (its Δ is 0 by construction)."""
    low, high, why = [], [], []
    for _, row in frame.iterrows():
        found = _delta_interval(frame, scores, row, baseline, metric) if _ours(row) else None
        interval, reason = found if found is not None else (None, "")
        low.append(np.nan if interval is None else 100.0 * interval.low)
        high.append(np.nan if interval is None else 100.0 * interval.high)
        why.append(reason)
    frame[f"{key}_lo"], frame[f"{key}_hi"], frame[f"{key}_why"] = low, high, why


def _ours(row: pd.Series) -> bool:
    return row.get("source", "ours") == "ours" and pd.notna(row.get("delta"))


def _delta_interval(
    frame: pd.DataFrame, scores: pd.DataFrame, row: pd.Series, baseline: str, metric: IoUMetric
) -> tuple[bootstrap.Interval | None, str] | None:
    match = baseline_row(frame, row, baseline)
    if match is None or all(match[k] == row[k] for k in KEY):
        return None
    ours, names, why = row_evidence(scores, row, metric)
    theirs, their_names, their_why = row_evidence(scores, match, metric)
    if ours is None or theirs is None:
        return None, why or their_why
    if sorted(names) != sorted(their_names):
        return None, OTHER_IMAGES
    if names != their_names:
        order = [their_names.index(name) for name in names]
        theirs = bootstrap.Evidence(
            theirs.intersection[:, order], theirs.union[:, order], theirs.seeds
        )
    return bootstrap.paired_difference(ours, theirs), ""


def add_cell_intervals(
    frame: pd.DataFrame, scores: pd.DataFrame, metric: IoUMetric = "miou"
) -> None:
    """Add `miou_lo`, `miou_hi` (%) and `miou_why` to rows of `over_seeds`: the bootstrap
    interval of each row's own (seed-mean) mIoU."""
    values: list[tuple[float, float, str]] = []
    for _, row in frame.iterrows():
        evidence, _, why = row_evidence(scores, row, metric)
        if evidence is None:
            values.append((np.nan, np.nan, why))
            continue
        interval = bootstrap.interval(evidence)
        values.append((100.0 * interval.low, 100.0 * interval.high, ""))
    frame["miou_lo"] = [v[0] for v in values]
    frame["miou_hi"] = [v[1] for v in values]
    frame["miou_why"] = [v[2] for v in values]


def interval_notes(frame: pd.DataFrame, key: str, *, what: str, paired: bool = True) -> list[str]:
    """How the intervals in `key` were made, and which rows have none and why."""
    lines = [
        f"{what}: {bootstrap.LEVEL:.0%} bootstrap percentile interval ({bootstrap.RESAMPLES} "
        f"resamples, seed {bootstrap.SEED}) over the images"
        + (", the same resample for both rows (paired)" if paired else "")
        + "; each mIoU recomputed from the summed per-image counts; with several seeds the "
        + "seeds are resampled too"
        + (" (paired by seed)" if paired else "")
        + " and averaged."
    ]
    why = frame.get(f"{key}_why", pd.Series(dtype=object))
    for reason, label in ((NO_COUNTS, "no per-image counts"), (OTHER_IMAGES, "other images")):
        rows = [_name(r) for _, r in frame[why == reason].iterrows()]
        if rows and reason == NO_COUNTS:
            lines.append(
                f"[n/a] ({label}: {', '.join(rows)}): stored before rmi kept per-image counts; "
                "n/a: re-run rmi eval on those runs (rmi crf for CRF rows)."
            )
        elif rows:
            lines.append(f"[n/a] ({label}: {', '.join(rows)}): the rows were {reason}.")
    return lines


def _name(row: Any) -> str:
    return f"{row.get('group', '')} {row.get('label', '')}".strip()
