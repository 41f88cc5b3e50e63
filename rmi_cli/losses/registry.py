"""Loss registry: name (as written in YAML, `config.LossName`) -> builder of a `SegLoss`.

A builder's keyword-only parameters other than `num_classes` and `ignore_index` are the loss's
options, named exactly as the fields of its configuration block (`config.loss_options`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.errors import LossOptionError
from rmi_cli.losses.affinity import AffinityLoss
from rmi_cli.losses.base import SegLoss
from rmi_cli.losses.baselines import BCELoss, CELoss
from rmi_cli.losses.rmi import RMILoss
from rmi_cli.registry import Registry

LossBuilder = Callable[..., SegLoss]

LOSSES: Registry[LossBuilder] = Registry("loss")  # keys: config.LossName
LOSSES.register("ce", CELoss)
LOSSES.register("bce", BCELoss)
LOSSES.register("rmi", RMILoss)
LOSSES.register("aaf", AffinityLoss)

_COMMON = ("num_classes", "ignore_index")


def loss_option_names(name: str) -> tuple[str, ...]:
    """The options a loss accepts besides num_classes and ignore_index, in signature order."""
    builder = _builder(name)
    parameters = inspect.signature(builder).parameters.values()
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name not in _COMMON)


def build_loss(
    name: str, *, num_classes: int, ignore_index: int = IGNORE_INDEX, **options: Any
) -> SegLoss:
    """Build the loss `name` with `options` (the fields of its config block).

    Raises `UnknownName` for an unknown loss, `LossOptionError` for an unknown option or an
    invalid value.
    """
    known = loss_option_names(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise LossOptionError(
            f"loss {name!r} has no option(s) {', '.join(unknown)}; "
            f"known options: {', '.join(known) or '(none)'}"
        )
    return _builder(name)(num_classes=num_classes, ignore_index=ignore_index, **options)


def _builder(name: str) -> LossBuilder:
    return LOSSES.get(name, field="loss.name")
