"""The paper's reported numbers (`paper_results.yaml`) as reference rows beside ours.

Reference rows are shown only on the dataset and split their paper table belongs to (VOC val:
Tables 1 and 3; VOC test: Table 2; CamVid test: Table 4), only when our rows' mIoU is over as
many classes as the paper's (Table 4's is over 12: "unlabelled" scored, recipe section 4), and
only beside rows of ours trained as the paper's were (a row trained from scratch has a group of
its own, which no paper row matches). The dataset of our rows is their `dataset` field when the
rows carry one, else recognised from their class names.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import pandas as pd
import yaml

from rmi_cli.constants import VOID_CLASS_NAME
from rmi_cli.report.frames import class_names, crf_iterations, method_label, params_key

DATASET_ALIASES = {"voc": "voc2012", "pascalvoc": "voc2012", "pascalvoc2012": "voc2012"}


@functools.cache
def paper_results() -> dict[str, Any]:
    """The parsed `paper_results.yaml` (read on first use, then cached)."""
    text = resources.files("rmi_cli.report").joinpath("paper_results.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def normalize(name: str) -> str:
    """Class or dataset names compared lower-case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def canonical_class(dataset: str, name: str) -> str:
    info = paper_results()["datasets"][dataset]
    key = normalize(name)
    return info.get("aliases", {}).get(key, key)


def infer_dataset(scores: pd.DataFrame) -> str | None:
    """`voc2012`, `camvid`, or None when the rows are on a dataset the paper does not report."""
    datasets = paper_results()["datasets"]
    explicit = {normalize(str(d)) for d in scores["dataset"].dropna()}
    if len(explicit) == 1:
        name = explicit.pop()
        name = DATASET_ALIASES.get(name, name)
        return name if name in datasets else None
    names = [name for name in class_names(scores) if name != VOID_CLASS_NAME]
    for key, info in datasets.items():
        wanted = set(info["classes"])
        if len(names) == len(wanted) and {canonical_class(key, n) for n in names} == wanted:
            return key
    return None


def paper_tables(kinds: Iterable[str], dataset: str | None, split: str) -> list[dict[str, Any]]:
    """The paper's tables of these kinds on this dataset and split (often none)."""
    kinds = set(kinds)
    return [
        table
        for table in paper_results()["tables"]
        if table["kind"] in kinds and table["dataset"] == dataset and table["split"] == split
    ]


def where(tables: Sequence[dict[str, Any]]) -> str:
    """The tables named with their data, e.g. `Table 1 (PASCAL VOC 2012 val)`."""
    datasets = paper_results()["datasets"]
    parts = [f"Table {t['id']} ({datasets[t['dataset']]['name']} {t['split']})" for t in tables]
    return ", ".join(parts)


def reference_frame(tables: Sequence[dict[str, Any]], classes: Sequence[str] = ()) -> pd.DataFrame:
    """The tables' non-official rows as table rows (source "paper"), times in ms, class IoUs
    in columns `iou.<our class name>` aligned with `classes`."""
    records: list[dict[str, Any]] = []
    for table in tables:
        for row in table["rows"]:
            if not row.get("official"):
                records.append(_reference_record(table, row, classes))
    frame = pd.DataFrame(records)
    if not frame.empty:
        frame["crf_ms"] = _crf_extra_ms(frame)
    return frame


def _reference_record(
    table: dict[str, Any], row: dict[str, Any], classes: Sequence[str]
) -> dict[str, Any]:
    postprocess = str(row.get("postprocess", "none"))
    params = dict(row.get("params") or {})
    seconds = row.get("inference_s")
    record = {
        "source": "paper",
        "table": str(table["id"]),
        "group": row["group"],
        "method": row["method"],
        "postprocess": postprocess,
        "crf_iters": crf_iterations(postprocess),
        "label": f"{method_label(row['method'], postprocess)} (paper)",
        "params": params,
        "params_key": params_key(params),
        "miou": float(row["miou"]),
        "miou_named": _named_mean(table, row),
        "total_ms": math.nan if seconds is None else round(1000.0 * seconds, 6),
        "n": math.nan,
        "missing": [],
        "from_scratch": False,
    }
    return record | _class_cells(table, row, classes)


def _named_mean(table: dict[str, Any], row: dict[str, Any]) -> float:
    """The mean of the printed class IoUs where the printed mIoU also counts a class that is
    not printed (Table 4's "unlabelled"); NaN elsewhere."""
    values = row.get("class_iou") or []
    if not values or len(values) >= int(table["miou_classes"]):
        return math.nan
    return round(math.fsum(float(v) for v in values) / len(values), 6)


def _class_cells(
    table: dict[str, Any], row: dict[str, Any], classes: Sequence[str]
) -> dict[str, float]:
    values = row.get("class_iou")
    if not values or not classes:
        return {}
    order = paper_results()["datasets"][table["dataset"]]["classes"]
    canonical = [canonical_class(table["dataset"], name) for name in classes]
    if set(canonical) <= set(order):
        return {
            f"iou.{n}": float(values[order.index(c)])
            for n, c in zip(classes, canonical, strict=True)
        }
    # names we cannot place: rely on the dataset's standard class order
    return {f"iou.{n}": float(v) for n, v in zip(classes, values, strict=False)}


def _crf_extra_ms(frame: pd.DataFrame) -> list[float]:
    """A CRF row's time minus its group's plain row of the same method: the CRF's own time."""
    plain = frame[frame["postprocess"] == "none"]
    base = dict(
        zip(zip(plain["group"], plain["method"], strict=True), plain["total_ms"], strict=True)
    )
    return [
        round(total - base.get((group, method), math.nan), 6) if post != "none" else math.nan
        for group, method, post, total in zip(
            frame["group"], frame["method"], frame["postprocess"], frame["total_ms"], strict=True
        )
    ]


def matches(ours: pd.Series, paper: pd.Series) -> bool:
    """Same group and method, and the same post-processing; a best-of-CRF row on either side
    matches any CRF row on the other."""
    if ours["group"] != paper["group"] or ours["method"] != paper["method"]:
        return False
    if ours["postprocess"] == paper["postprocess"]:
        return True
    both_crf = "none" not in (ours["postprocess"], paper["postprocess"])
    return both_crf and (bool(ours.get("crf_best", False)) or paper["postprocess"] == "crf-best")


def interleave(ours: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Our rows, each paper row placed right after the last of ours it matches; paper rows
    that match none are left out."""
    if paper.empty:
        return ours.reset_index(drop=True)
    last: dict[int, int] = {}
    for p, prow in paper.iterrows():
        hits = [i for i, orow in ours.iterrows() if matches(orow, prow)]
        if hits:
            last[int(p)] = int(hits[-1])
    pieces: list[pd.DataFrame] = []
    for i in range(len(ours)):
        pieces.append(ours.iloc[[i]])
        placed = [p for p, o in last.items() if o == ours.index[i]]
        if placed:
            pieces.append(paper.loc[placed])
    return pd.concat(pieces, ignore_index=True)


def with_reference(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    kinds: Iterable[str],
    split: str,
    classes: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[str]]:
    """`frame` with the matching paper rows interleaved, and the notes that say what they are."""
    dataset = infer_dataset(scores)
    tables = paper_tables(kinds, dataset, split)
    if not tables:
        return frame, [no_reference_note(kinds, dataset, split)]
    scored = scored_counts(scores)
    unlike = [t for t in tables if scored != {int(t["miou_classes"])}]
    if unlike:
        return frame, [unlike_note(unlike, scored)]
    combined = interleave(frame, reference_frame(tables, classes))
    if not (combined["source"] == "paper").any():
        return combined, [_none_placed_note(tables, frame)]
    notes = [f"(paper) rows: as reported in the paper's {where(tables)}; blank = not reported."]
    notes += comparison_notes(tables, dataset, frame)
    if any(r.get("postprocess") == "crf-best" for t in tables for r in t["rows"]):
        notes.append(
            "CE & CRF (paper): the best of CRF-1/5/10 by mIoU; the paper does not say which."
        )
    if any(t["kind"] == "methods" for t in tables):
        notes.append(
            "Paper times: its 'average inference time per image' (printed in seconds, hardware "
            "and protocol not stated), shown in ms; its +CRF = the CRF row minus the CE row."
        )
    return combined, notes


def scored_counts(scores: pd.DataFrame) -> set[int]:
    """How many classes our evaluated rows score (one number when they agree)."""
    evaluated = scores.loc[scores["evaluated"], "scored_classes"].dropna()
    return {int(n) for n in evaluated}


def unlike_note(tables: Sequence[dict[str, Any]], scored: set[int]) -> str:
    """Why the paper's rows are left out: its mIoU averages another number of classes."""
    theirs = " and ".join(sorted({str(t["miou_classes"]) for t in tables}))
    ours = " and ".join(str(n) for n in sorted(scored)) or "no"
    text = (
        f"No paper rows: the paper's mIoU in {where(tables)} is over {theirs} classes and these "
        f"rows score {ours}, so the numbers are not comparable."
    )
    if any(t["dataset"] == "camvid" for t in tables):
        text += (
            " The paper (its released code) trains and scores CamVid's 'unlabelled' as a 12th "
            "class; an 11-class mIoU with void ignored reads about 2.5-2.9 points higher at "
            "equal quality. Train with data.void: class (camvid-table4 does) to compare."
        )
    return text


def _none_placed_note(tables: Sequence[dict[str, Any]], frame: pd.DataFrame) -> str:
    if bool(frame["from_scratch"].fillna(False).astype(bool).all()):
        return (
            f"No paper rows: every row here was trained from scratch, and the paper's models in "
            f"{where(tables)} started from ImageNet-pretrained weights, so the numbers are not "
            f"comparable."
        )
    return f"No paper rows: none of {where(tables)} matches these rows' groups and methods."


def comparison_notes(
    tables: Sequence[dict[str, Any]], dataset: str | None, frame: pd.DataFrame
) -> list[str]:
    notes: list[str] = []
    if any(not math.isnan(_named_mean(t, r)) for t in tables for r in t["rows"]):
        notes.append(
            "The paper's mIoU is over more classes than it prints (CamVid: its 11 columns and "
            "'unlabelled'); its named mIoU here is the mean of its printed columns."
        )
    during = paper_results()["datasets"][dataset].get("evaluated_during_training")
    if during:
        notes.append(
            f"The released code evaluated on {during} while training and the paper does not say "
            f"which checkpoint it reports: its rows may be the best of a run; ours are the final "
            f"checkpoint."
        )
    if bool(frame["from_scratch"].fillna(False).astype(bool).any()):
        notes.append(
            "Rows trained from scratch have no paper row beside them: the paper's models "
            "started from ImageNet-pretrained weights, so the numbers are not comparable."
        )
    return notes


def no_reference_note(kinds: Iterable[str], dataset: str | None, split: str) -> str:
    """Why no paper rows are shown: where the paper does report such results."""
    kinds = set(kinds)
    reported = [t for t in paper_results()["tables"] if t["kind"] in kinds]
    datasets = paper_results()["datasets"]
    ours = f"{datasets[dataset]['name']} {split}" if dataset else f"this dataset ({split})"
    return f"No paper rows: the paper reports these results in {where(reported)}, not on {ours}."
