"""Rough cost of a planned run, for `rmi ablate --dry-run`.

Measured throughput wins: when the database holds finished runs of the same model, crop and
batch, their images/s is used. Otherwise a GPU run's estimate scales reference figures measured
on an H100 (docs/benchmarks.md, "Reference figures of the estimates": DeepLabv3-ResNet101,
output stride 16, batch 16, crop 479, bf16 + channels_last: 54 ms per step; ResNet-50: 41 ms;
output stride 8 about 2.1x; one 513x513 image at inference about 10 ms) and says so; a CPU run
has no reference and is "?" until one like it has been measured. The dense CRF runs on CPU cores:
about 0.124 s per 513x513 image and mean-field iteration on one core of the GPU machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from rmi_cli import db as store
from rmi_cli.config import RunConfig
from rmi_cli.manifest import ExperimentPlan
from rmi_cli.runner.plan_settings import PlanSetting, plan_settings
from rmi_cli.runner.preflight import missing_roots, weights_warnings
from rmi_cli.stored import ThroughputRecord
from rmi_cli.system import usable_cores

REFERENCE = "H100 reference figures (docs/benchmarks.md)"
CRF_REFERENCE = "CRF reference: 0.124 s per 513x513 image and iteration on one core"
_STEP_MS = {"resnet18": 20.0, "resnet50": 41.0, "resnet101": 54.0}  # OS16, b16, crop 479
_OS8_FACTOR = 2.1
_PLUS_FACTOR = 1.1  # the v3+ decoder at stride 4
_INFER_MS = 10.0  # per 513x513 image
_CRF_S_PER_ITER = 0.124  # per 513x513 image and mean-field iteration, one core
# Typical image sizes (pixels) of the public datasets, for the CRF's cost.
_PIXELS = {"camvid": 360 * 480, "voc2012": 500 * 375}
# Split sizes of the public datasets (the synthetic ones come from the configuration).
_SPLITS = {
    "camvid": {"train": 367, "val": 101, "test": 233, "trainval": 468},
    "voc2012": {"train": 1464, "val": 1449, "trainval": 2913, "trainaug": 10582},
}


@dataclass(frozen=True)
class Estimate:
    """Seconds of accelerator time and where the figure comes from."""

    seconds: float | None
    basis: str


@dataclass(frozen=True)
class PlannedCost:
    """One line of the dry run: a run or a CRF step, its state and its estimated cost."""

    name: str
    method: str
    group: str
    seed: str
    status: str  # new, queued, running, done, failed
    estimate: Estimate


@dataclass(frozen=True)
class PlanEstimate:
    """The dry run of an experiment: every run and CRF step, what is left and its cost, and
    what this machine notices about it."""

    plan: ExperimentPlan
    runs: tuple[PlannedCost, ...]
    crf_steps: tuple[PlannedCost, ...]
    statuses: dict[str, int]  # the runs' statuses, "new" for those not in the database
    train_s: float  # training and evaluation left, where estimated
    unestimated: int  # runs left without an estimate
    crf_s: float
    missing_roots: tuple[str, ...]  # dataset roots that do not exist on this machine
    weights_warnings: tuple[str, ...]  # weights files the runs cannot read here, one line each
    settings: tuple[PlanSetting, ...]  # what the runs train with (the recipe, to check)


def estimate_plan(database: store.Database | None, plan: ExperimentPlan) -> PlanEstimate:
    """Cost what `plan` would run (`database` None: nothing stored yet); queues nothing."""
    rows = store.run_rows(database) if database is not None else []
    known = {row.config_hash: row.status for row in rows}
    measured = store.throughput_rows(database) if database is not None else []
    runs, crf_steps, train_s, crf_s, unestimated = [], [], 0.0, 0.0, 0
    for run in plan.runs:
        status = known.get(run.config_hash, "new")
        cost = train_estimate(run.config, measured)
        if status != "done":
            train_s += cost.seconds or 0.0
            unestimated += cost.seconds is None
        runs.append(PlannedCost(run.name, run.label, run.group, str(run.config.seed), status, cost))
    for step in plan.crf_steps:
        status = known.get(step.config_hash, "new")
        # The CRF runs on the CPU cores of the worker's machine; assume one like this one.
        cost = crf_estimate(step.target.config, step.split, max(step.crf.iters), usable_cores())
        if status != "done" and cost.seconds is not None:
            crf_s += cost.seconds
        method = f"{step.target.label} & CRF"
        crf_steps.append(PlannedCost(step.name, method, step.target.group, "", status, cost))
    statuses = Counter(known.get(run.config_hash, "new") for run in plan.runs)
    roots = missing_roots(run.config.data for run in plan.runs)
    return PlanEstimate(
        plan, tuple(runs), tuple(crf_steps), dict(statuses), train_s, unestimated, crf_s,
        tuple(roots), tuple(weights_warnings(plan)), plan_settings(plan),
    )  # fmt: skip


def train_estimate(config: RunConfig, measured: Sequence[ThroughputRecord]) -> Estimate:
    """Training + evaluation time of one run."""
    same = [row for row in measured if _same_shape(row.config or {}, config)]
    rates = [row.images_per_s for row in same if row.images_per_s]
    images = config.train.iterations * config.train.batch_size
    evaluation = _split_size(config, config.data.eval_split)
    if rates:
        rate = median(rates)
        device = same[-1].device or "this setup"
        seconds = images / rate + (evaluation or 0) * _INFER_MS / 1000.0
        return Estimate(seconds, f"measured: {rate:.1f} images/s on {device} ({len(rates)} runs)")
    if config.train.device == "cpu":
        return Estimate(None, "no CPU reference; measured once a run like it has finished")
    step_ms = _STEP_MS[config.model.backbone]
    step_ms *= (config.train.batch_size / 16) * (config.data.crop_size / 479) ** 2
    step_ms *= _OS8_FACTOR if config.model.output_stride == 8 else 1.0
    step_ms *= _PLUS_FACTOR if config.model.name == "deeplabv3plus" else 1.0
    seconds = config.train.iterations * step_ms / 1000.0 + (evaluation or 0) * _INFER_MS / 1000
    return Estimate(seconds, REFERENCE)


def crf_estimate(config: RunConfig, split: str, iterations: int, workers: int) -> Estimate:
    """Wall time of one CRF step on `workers` CPU cores (one pass reads out every count)."""
    images = _split_size(config, split)
    if images is None:
        return Estimate(None, "unknown split size")
    if config.eval.max_images is not None:
        images = min(images, config.eval.max_images)
    if config.data.name == "synthetic":
        pixels = _synthetic_pixels(config)
    else:
        pixels = float(_PIXELS.get(config.data.name, 513 * 513))
    seconds = images * pixels / 513**2 * _CRF_S_PER_ITER * iterations / max(workers, 1)
    return Estimate(seconds, f"{CRF_REFERENCE}, {max(workers, 1)} processes")


def format_duration(seconds: float | None) -> str:
    """`5400` -> `1.5 h`; None -> `?`."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _split_size(config: RunConfig, split: str) -> int | None:
    if config.data.name == "synthetic":
        synthetic = config.data.synthetic
        sizes = {"train": synthetic.train_images, "val": synthetic.val_images}
        sizes |= {"test": synthetic.test_images, "trainval": synthetic.train_images}
        sizes["trainval"] += synthetic.val_images
        return sizes.get(split)
    return _SPLITS.get(config.data.name, {}).get(split)


def _synthetic_pixels(config: RunConfig) -> float:
    return float(config.data.synthetic.height * config.data.synthetic.width)


def _same_shape(stored: Mapping[str, Any], config: RunConfig) -> bool:
    model, train, data = stored.get("model", {}), stored.get("train", {}), stored.get("data", {})
    return (
        model.get("name") == config.model.name
        and model.get("backbone") == config.model.backbone
        and model.get("output_stride") == config.model.output_stride
        and train.get("batch_size") == config.train.batch_size
        and data.get("crop_size") == config.data.crop_size
        and train.get("precision") == config.train.precision
    )
