"""Hand-built evaluation records, as `rmi_cli.db` returns them for `rmi table`.

A plain module (not conftest) so tests can import it by a name no other test folder uses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rmi_cli.stored import EvaluationRecord, RunRecord

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
# as rmi_cli.data.camvid spells them (the paper's Table 4 headers)
CAMVID_CLASSES = (
    "sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car",
    "pedestrian", "bicyclist",
)  # fmt: skip
PROTOCOL = {
    "median_ms": 100.0,
    "p90_ms": 104.0,
    "mean_ms": 101.0,
    "images": 1449,
    "warmup_images": 10,
    "batch_size": 1,
    "input_size": "variable (max 500x500)",
    "device": "NVIDIA H100 80GB HBM3",
    "precision": "bf16",
    "protocol": "forward pass only, CUDA-synchronised, data loading excluded",
}
MODELS = {"DeepLabv3": "deeplabv3", "DeepLabv3+": "deeplabv3plus"}
LOSSES = {"CE": "ce", "BCE": "bce", "RMI": "rmi", "Affinity": "aaf"}


def make_row(
    group: str,
    method: str,
    seed: int,
    miou: float | None,
    *,
    experiment: str = "voc-table1",
    split: str | None = "val",
    postprocess: str | None = "none",
    params: dict[str, Any] | None = None,
    classes: tuple[str, ...] = VOC_CLASSES,
    class_iou: dict[str, float | None] | None = None,
    net_ms: float | None = 100.0,
    crf_ms: float | None = None,
    eval_mb: float | None = 2048.0,
    status: str = "done",
    protocol: dict[str, Any] | None = PROTOCOL,
) -> EvaluationRecord:
    """One evaluation record; `miou=None` is a run with no evaluation (queued or failed)."""
    model = MODELS[group]
    name = f"{'v3p' if model.endswith('plus') else 'v3'}-{method.lower()}-seed{seed}"
    evaluated = miou is not None
    if class_iou is None and evaluated:
        class_iou = dict.fromkeys(classes, miou)
    total = None if net_ms is None else net_ms + (crf_ms or 0.0)
    return EvaluationRecord(**{
        "experiment": experiment,
        "run": name,
        "run_id": abs(hash((experiment, name))) % 10_000,
        "config_hash": f"hash-{name}",
        "seed": seed,
        "method": method,
        "group": group,
        "model": model,
        "backbone": "resnet101",
        "loss": LOSSES[method],
        "params": {"model.name": model} if params is None else params,
        "split": split if evaluated else None,
        "postprocess": postprocess if evaluated else None,
        "miou": miou,
        "pixel_accuracy": None if miou is None else min(1.0, miou + 0.15),
        "class_iou": class_iou or {},
        "inference_median_ms": net_ms if evaluated else None,
        "inference_p90_ms": None if net_ms is None or not evaluated else net_ms + 4,
        "crf_median_ms": crf_ms if evaluated else None,
        "total_median_ms": total if evaluated else None,
        "peak_train_memory_mb": 30000.0 if evaluated else None,
        "peak_eval_memory_mb": eval_mb if evaluated else None,
        "protocol": dict(protocol) if protocol and evaluated and net_ms is not None else None,
        "device": PROTOCOL["device"],
        "torch": "2.6.0",
        "status": status,
    })  # fmt: skip


def voc_rows() -> list[EvaluationRecord]:
    """Table 1-shaped results: two groups, 2 seeds, CE & CRF rows, a failed and a queued run,
    one class with zero union in one seed."""
    rows = []
    for group, method, seed_mious in [
        ("DeepLabv3", "CE", [0.7700, 0.7720]),
        ("DeepLabv3", "BCE", [0.7690, 0.7710]),
        ("DeepLabv3", "RMI", [0.7860, 0.7880]),
        ("DeepLabv3+", "CE", [0.7800, 0.7820]),
        ("DeepLabv3+", "RMI", [0.7950, 0.7970, None]),
        ("DeepLabv3+", "Affinity", [None]),
    ]:
        for seed, miou in enumerate(seed_mious):
            status = "done" if miou is not None else ("failed" if seed == 2 else "queued")
            row = make_row(group, method, seed, miou, status=status)
            if (group, method, seed) == ("DeepLabv3", "CE", 1):
                row = replace(row, class_iou={**row.class_iou, "sofa": None})
            rows.append(row)
    crf = {
        "DeepLabv3": {1: [0.7820, 0.7840], 5: [0.7830, 0.7850], 10: [0.7810, 0.7830]},
        "DeepLabv3+": {1: [0.7890, 0.7910], 5: [0.7880, 0.7900]},
    }
    for group, steps in crf.items():
        for iters, mious in steps.items():
            for seed, miou in enumerate(mious):
                row = make_row(group, "CE", seed, miou, postprocess=f"crf-{iters}",
                               crf_ms=250.0 + 30 * iters, eval_mb=2048.0)  # fmt: skip
                # a CRF job is a membership of its own, as the db stores it
                rows.append(replace(row, run=row.run + "+crf"))
    return rows


def run_rows_of(rows: list[EvaluationRecord]) -> list[RunRecord]:
    """What `rmi_cli.db.run_rows` gives for the runs behind `rows` (no params, no scores)."""
    runs: dict[str, RunRecord] = {}
    for row in rows:
        runs[row.run] = RunRecord(
            experiment=row.experiment, name=row.run, run_id=row.run_id or 0,
            config_hash=row.config_hash or "", status=row.status,
            kind="crf" if row.run.endswith("+crf") else "train",
            method=row.method, group=row.group,
        )  # fmt: skip
    return list(runs.values())


def ablation_rows() -> list[EvaluationRecord]:
    """Table 3(a)-shaped: loss.pool x loss.pool_size, 2 seeds; (max, 2) seed 1 failed."""
    values = {
        ("nearest", 2): [0.7750, 0.7770], ("nearest", 4): [0.7740, 0.7760],
        ("max", 2): [0.7850, None], ("max", 4): [0.7860, 0.7880],
        ("avg", 2): [0.7920, 0.7940], ("avg", 4): [0.7870, 0.7890],
    }  # fmt: skip
    rows = []
    for (pool, size), mious in values.items():
        for seed, miou in enumerate(mious):
            row = make_row(
                "DeepLabv3", "RMI", seed, miou, experiment="voc-table3a",
                params={"loss.pool": pool, "loss.pool_size": size},
                status="done" if miou is not None else "failed",
            )  # fmt: skip
            rows.append(replace(row, run=f"rmi-pool={pool}-pool_size={size}-seed{seed}"))
    return rows


def camvid_rows(*, void: str = "class") -> list[EvaluationRecord]:
    """Table 4-shaped: CamVid test, one seed, CE, CE & CRF-1/5, RMI; "fence" never present.
    `void="class"` (camvid-table4's): 12 classes, "unlabelled" at 0.30 IoU; "ignore": 11."""
    classes = (*CAMVID_CLASSES, *(("unlabelled",) if void == "class" else ()))
    rows = []
    for method, miou, post in [
        ("CE", 0.60, "none"), ("CE", 0.605, "crf-1"), ("CE", 0.61, "crf-5"), ("RMI", 0.63, "none"),
    ]:  # fmt: skip
        iou = dict.fromkeys(classes, miou) | {"fence": None}
        if void == "class":
            iou["unlabelled"] = 0.30
            present = [v for v in iou.values() if v is not None]
            miou = sum(present) / len(present)  # as scores_from_confusion computes it
        rows.append(
            make_row("DeepLabv3", method, 0, miou, experiment="camvid-table4", split="test",
                     postprocess=post, classes=classes, class_iou=iou,
                     crf_ms=300.0 if post != "none" else None, eval_mb=None)
        )  # fmt: skip
        rows[-1] = replace(rows[-1], void=void)
    return rows
