"""The notes printed under a table: how numbers were measured and why a cell is empty.

Timing and memory numbers are meaningless without their protocol, so every table that shows
them states it here, from the protocol each row was measured under.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from rmi_cli.constants import BOUNDARY_FRACTION, MIN_WARMUP_IMAGES, VOID_CLASS_NAME
from rmi_cli.report.frames import FROM_SCRATCH, PENDING_CRF
from rmi_cli.report.table import MISSING

SEEDS = (
    "Values: mean ± sample std (ddof = 1) over seeds; n = seeds with a result "
    "(a single seed has no std)."
)
MAX_LISTED = 6
CHECKPOINT = (
    "Our rows: the final checkpoint of each run, evaluated once after training (no checkpoint "
    "is chosen on the evaluation split)."
)


def protocol_text(protocol: dict[str, Any]) -> str:
    """One protocol as a sentence fragment."""
    warmup = protocol.get("warmup_images")
    short = isinstance(warmup, int) and warmup < MIN_WARMUP_IMAGES
    return (
        f"median of per-image times over {protocol.get('images', '?')} images after "
        f"{'?' if warmup is None else warmup} warm-up images"
        + (f" (fewer than the protocol's {MIN_WARMUP_IMAGES}: indicative only)" if short else "")
        + f", batch size {protocol.get('batch_size', '?')}, input "
        f"{protocol.get('input_size', '?')}, {protocol.get('precision', '?')} on "
        f"{protocol.get('device', '?')}"
        + (f" ({protocol['protocol']})" if protocol.get("protocol") else "")
    )


def _identity(protocol: dict[str, Any]) -> str:
    # the measured values differ from run to run; everything else is the protocol
    measured = {"median_ms", "p90_ms", "mean_ms"}
    return json.dumps({k: v for k, v in protocol.items() if k not in measured}, sort_keys=True)


def timing_notes(scores: pd.DataFrame, *, crf: bool) -> list[str]:
    """What the time column measures, from the protocols of the timed rows in `scores`."""
    timed = scores[scores["evaluated"] & scores["total_ms"].notna()]
    protocols: dict[str, tuple[dict[str, Any], list[str]]] = {}
    untimed_protocol: list[str] = []
    for run, protocol in zip(timed["run"], timed["protocol"], strict=True):
        if not protocol:
            untimed_protocol.append(run)
            continue
        entry = protocols.setdefault(_identity(protocol), (protocol, []))
        if run not in entry[1]:
            entry[1].append(run)
    notes = [_one_protocol(protocols) if len(protocols) <= 1 else _many_protocols(protocols)]
    if untimed_protocol:
        notes.append(f"Timed without a recorded protocol: {_listing(untimed_protocol)}.")
    if crf:
        notes.append(
            "CRF rows: Inf. time = network + dense CRF per image; +CRF = the CRF's own median "
            "time per image (post-processing of saved probabilities)."
        )
    return [n for n in notes if n]


def _one_protocol(protocols: dict[str, tuple[dict[str, Any], list[str]]]) -> str:
    if not protocols:
        return f"Inf. time: {MISSING} = not timed."
    protocol = next(iter(protocols.values()))[0]
    return f"Inf. time (ms per image): {protocol_text(protocol)}."


def _many_protocols(protocols: dict[str, tuple[dict[str, Any], list[str]]]) -> str:
    parts = [
        f"({i}) {protocol_text(protocol)} [{_listing(runs)}]"
        for i, (protocol, runs) in enumerate(protocols.values(), start=1)
    ]
    return (
        "Rows were timed under different protocols, so times are not comparable: "
        + "; ".join(parts)
        + "."
    )


def memory_note(scores: pd.DataFrame) -> str:
    devices = sorted({str(d) for d in scores.loc[scores["eval_memory_mb"].notna(), "device"]})
    where = f" on {', '.join(devices)}" if devices else ""
    return (
        f"Peak eval memory (MB): peak GPU memory allocated while evaluating{where}; "
        f"{MISSING} = not measured (CPU runs)."
    )


def missing_notes(
    frame: pd.DataFrame, scores: pd.DataFrame | None = None, *, section: str = "group"
) -> list[str]:
    """One line per row of ours whose runs are not all there: which, and their status; with
    `scores`, also CRF jobs that have no row to show yet."""
    lines: list[str] = []
    for _, row in frame[frame["source"] == "ours"].iterrows():
        missing: Sequence[str] = row["missing"]
        if not len(missing):
            continue
        name = f"{row[section]} {row['label']}".strip()
        if int(row["n"]) == 0:
            lines.append(f"{name}: no result yet ({_listing(missing)}).")
        else:
            lines.append(
                f"{name}: n = {int(row['n'])} of {int(row['runs'])} ({_listing(missing)})."
            )
    if scores is not None:
        lines += _pending_crf(frame, scores, section)
    return [f"{MISSING} = no result: a run is queued, running or failed.", *lines] if lines else []


def _pending_crf(frame: pd.DataFrame, scores: pd.DataFrame, section: str) -> list[str]:
    shown = set(zip(frame[section], frame["method"], frame["postprocess"] != "none", strict=True))
    pending = scores[scores["postprocess"] == PENDING_CRF]
    lines = []
    for (group, method), jobs in pending.groupby([section, "method"], sort=False):
        if (group, method, True) not in shown:
            runs = [f"{r}: {s}" for r, s in zip(jobs["run"], jobs["status"], strict=True)]
            lines.append(f"{group} {method} & CRF: no result yet ({_listing(runs)}).")
    return lines


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f", and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def delta_note(baseline: str, found: bool) -> str:
    if not found:
        return f"No {baseline} row to compare with, so there is no Δ column (see --baseline)."
    return (
        f"Δ vs {baseline}: mIoU minus that of the {baseline} row of the same group, in "
        "percentage points (paper rows: against the paper's own row)."
    )


def best_note() -> str:
    return "Bold: the best of our rows in each column within each group (paper rows excluded)."


def miou_notes(scores: pd.DataFrame, *, named: bool) -> list[str]:
    """What the mIoU columns average over, when that needs saying."""
    counts = sorted({int(n) for n in scores.loc[scores["evaluated"], "scored_classes"].dropna()})
    lines = []
    if len(counts) > 1:
        listed = ", ".join(str(n) for n in counts)
        lines.append(
            f"Rows score different numbers of classes ({listed}): their mIoUs are not comparable."
        )
    if named:
        lines.append(
            f"mIoU over all classes counts '{VOID_CLASS_NAME}', trained on and scored as a class "
            f"(data.void: class, as the released code and the paper's CamVid mIoU); the named "
            f"mIoU averages the other classes' IoUs from the same evaluation (the columns the "
            f"paper prints), so '{VOID_CLASS_NAME}' pixels still count against what is "
            f"predicted on them."
        )
    return lines


def scratch_notes(frame: pd.DataFrame) -> list[str]:
    if not bool(frame["from_scratch"].fillna(False).astype(bool).any()):
        return []
    return [
        f"({FROM_SCRATCH}): trained from random initialisation (model.pretrained: null), "
        "without the ImageNet weights the paper's models start from."
    ]


def metric_notes(scores: pd.DataFrame, metric: str) -> list[str]:
    """What the boundary IoU is, and which rows lack it (stored before it was computed)."""
    if metric != "boundary-iou":
        return []
    fractions = sorted({c.boundary_fraction for c in scores["counts"] if c is not None}) or [
        BOUNDARY_FRACTION
    ]
    width = " or ".join(f"{100 * f:g}%" for f in fractions)
    lines = [
        "Boundary IoU (Cheng et al., CVPR 2021): per class, IoU of the ground truth's and the "
        f"prediction's pixels within d = {width} of the image diagonal (at least 1 px) of "
        "their edges, summed over images; the mean is over classes with a non-empty band."
    ]
    old = scores[scores["evaluated"] & scores["miou"].isna()]
    if len(old):
        runs = _listing(list(dict.fromkeys(old["run"])))
        lines.append(
            f"{MISSING} in a boundary column: stored before rmi computed the boundary IoU "
            f"({runs}); n/a: re-run rmi eval (rmi crf for CRF rows)."
        )
    return lines
