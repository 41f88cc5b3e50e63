"""Segmentation losses (torch only): RMI (BCE + RMI) and the paper's comparators.

- `rmi_loss`, `rmi_per_class`, `RMILoss`: the Region Mutual Information objective with the
  released code's numerics (`rmi.py`; why it is often negative is explained there: each
  (image, class) term is bounded below by 0.5 * ln(5e-4) = -3.80, not by 0).
- `ce_loss`, `bce_loss`: softmax CE and the sigmoid BCE pixel term.
- `affinity_field_loss`: Ke et al.'s affinity field loss on top of softmax CE.
- `LOSSES`, `build_loss`: the registry by `config.LossName` ("ce", "bce", "rmi", "aaf").

Every loss ignores labels equal to `ignore_index` (255) and labels outside [0, C).
"""

from rmi_cli.losses.affinity import AffinityLoss, affinity_field_loss
from rmi_cli.losses.base import LOCAL, BatchShare, LossInputError, SegLoss
from rmi_cli.losses.baselines import BCELoss, CELoss, bce_loss, ce_loss
from rmi_cli.losses.registry import LOSSES, LossBuilder, build_loss, loss_option_names
from rmi_cli.losses.rmi import RMILoss, rmi_loss, rmi_per_class

__all__ = [
    "LOCAL",
    "LOSSES",
    "AffinityLoss",
    "BCELoss",
    "BatchShare",
    "CELoss",
    "LossBuilder",
    "LossInputError",
    "RMILoss",
    "SegLoss",
    "affinity_field_loss",
    "bce_loss",
    "build_loss",
    "ce_loss",
    "loss_option_names",
    "rmi_loss",
    "rmi_per_class",
]
