"""SGD with the recipe's parameter groups (section 4).

Weight decay applies to convolution and linear weights only (not BatchNorm, not biases), and the
head (everything that is not the backbone) learns `head_lr_mult` times faster. Every group
carries its multiplier as `lr_mult`, so one call sets all groups from the schedule's base rate.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rmi_cli.config import TrainConfig
from rmi_cli.models import SegmentationModel, split_parameters


def param_groups(
    model: SegmentationModel, *, weight_decay: float, head_lr_mult: float
) -> list[dict[str, Any]]:
    """The models package's four groups (backbone/head x decay/no decay) as SGD groups.

    Empty groups are dropped; the order is fixed, so optimiser states line up across processes.
    """
    return [
        {
            "params": params,
            "weight_decay": weight_decay if name.endswith("/decay") else 0.0,
            "lr_mult": head_lr_mult if name.startswith("head/") else 1.0,
            "name": name,
        }
        for name, params in split_parameters(model).items()
        if params
    ]


def head_lr_multiplier(model: nn.Module, train: TrainConfig) -> float:
    """The configured multiplier, else the model's default (x10 DeepLabv3, x5 DeepLabv3+)."""
    if train.head_lr_mult is not None:
        return train.head_lr_mult
    return float(getattr(model, "default_head_lr_mult", 1.0))


def build_optimizer(model: SegmentationModel, train: TrainConfig) -> torch.optim.SGD:
    """SGD over the recipe's parameter groups; learning rates are set per step by `set_lr`."""
    groups = param_groups(
        model, weight_decay=train.weight_decay, head_lr_mult=head_lr_multiplier(model, train)
    )
    return torch.optim.SGD(groups, lr=train.lr, momentum=train.momentum)


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """Set every group's learning rate to `base_lr` times its multiplier."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group.get("lr_mult", 1.0)
