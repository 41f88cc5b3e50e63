"""What the dry run shows of every run's configuration: enough to check an experiment against
the recipe it claims to follow (docs/recipe.md) before anything is queued."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rmi_cli.config import RunConfig
from rmi_cli.manifest import ExperimentPlan

PLAN_SETTINGS = (
    "model.backbone", "model.deep_stem", "model.layout", "model.bn_momentum",
    "model.output_stride", "model.pretrained", "data.name", "data.train_split",
    "data.eval_split", "data.void", "data.crop_size", "data.scales", "data.scale_range",
    "train.iterations", "train.batch_size", "train.lr", "train.warmup_iters", "head_lr_mult",
    "train.weight_decay", "train.precision",
)  # fmt: skip
HEAD_LR_MULT = "head_lr_mult"  # resolved: the model's default when the run leaves it unset


@dataclass(frozen=True)
class SettingValue:
    """One value of a setting (a JSON value) and the run groups that train with it."""

    value: Any
    groups: tuple[str, ...]


@dataclass(frozen=True)
class PlanSetting:
    """A setting of the plan's runs: one value when every run shares it, else one per value."""

    key: str
    values: tuple[SettingValue, ...]


def plan_settings(plan: ExperimentPlan) -> tuple[PlanSetting, ...]:
    """`PLAN_SETTINGS` of the plan's runs, in that order; the scale settings a plan does not
    use (null in every run) are left out."""
    settings = []
    for key in PLAN_SETTINGS:
        values: dict[str, list[str]] = {}  # by JSON spelling: lists are not hashable
        for run in plan.runs:
            groups = values.setdefault(json.dumps(_setting(run.config, key)), [])
            if run.group not in groups:
                groups.append(run.group)
        if list(values) == ["null"] and key.startswith("data.scale"):
            continue
        found = [SettingValue(json.loads(v), tuple(groups)) for v, groups in values.items()]
        settings.append(PlanSetting(key, tuple(found)))
    return tuple(settings)


def _setting(config: RunConfig, key: str) -> Any:
    if key == HEAD_LR_MULT:
        return config.head_lr_mult()
    node: Any = config.to_json_dict()
    for part in key.split("."):
        node = node[part]
    return node
