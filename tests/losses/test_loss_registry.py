"""The registry matches the configuration vocabulary; builders wire options to the functions."""

from __future__ import annotations

import re
import typing

import pytest
import torch

from rmi_cli import config
from rmi_cli.errors import LossOptionError
from rmi_cli.losses import (
    LOSSES,
    SegLoss,
    affinity_field_loss,
    bce_loss,
    build_loss,
    ce_loss,
    loss_option_names,
    rmi_loss,
)
from rmi_cli.registry import UnknownName

CONFIGS = {
    "ce": config.CELossConfig(),
    "bce": config.BCELossConfig(),
    "rmi": config.RMILossConfig(radius=2, pool="max", pool_size=3, weight_lambda=0.25),
    "aaf": config.AffinityLossConfig(kld_margin=2.0, decay_base=10.0, downsample=2),
}


def test_registry_keys_are_the_config_loss_names() -> None:
    assert tuple(LOSSES) == typing.get_args(config.LossName)
    assert set(CONFIGS) == set(LOSSES)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_options_are_exactly_the_config_fields(name: str) -> None:
    assert set(loss_option_names(name)) == set(config.loss_options(CONFIGS[name]))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_built_loss_equals_the_functional_form(name: str) -> None:
    options = config.loss_options(CONFIGS[name])
    loss_fn = build_loss(name, num_classes=3, **options)
    assert isinstance(loss_fn, SegLoss)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 24, 20, generator=gen)
    labels = torch.randint(0, 3, (2, 24, 20), generator=gen)
    labels[:, :3] = 255
    functional = {
        "ce": ce_loss,
        "bce": bce_loss,
        "rmi": rmi_loss,
        "aaf": lambda *a, **k: affinity_field_loss(*a, progress=0.5, **k),
    }[name]
    expected = functional(logits, labels, num_classes=3, **options)
    assert torch.equal(loss_fn(logits, labels, progress=0.5), expected)
    assert loss_fn.fallback_count == 0


def test_unknown_name_lists_the_known_ones() -> None:
    message = "loss.name: unknown loss 'focal'; known: ce, bce, rmi, aaf"
    with pytest.raises(UnknownName, match=re.escape(message)):
        build_loss("focal", num_classes=3)


def test_unknown_option_lists_the_known_ones() -> None:
    message = (
        "loss 'rmi' has no option(s) stride; known options: radius, pool, pool_size, "
        "weight_lambda, lambda_way"
    )
    with pytest.raises(LossOptionError, match=re.escape(message)):
        build_loss("rmi", num_classes=3, stride=4)
    with pytest.raises(LossOptionError, match=re.escape("known options: (none)")):
        build_loss("ce", num_classes=3, radius=3)


def test_ignore_index_is_configurable() -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 3, 8, 8, generator=gen)
    labels = torch.randint(0, 3, (1, 8, 8), generator=gen)
    loss = build_loss("ce", num_classes=3, ignore_index=1)(logits, labels)
    expected = torch.nn.functional.cross_entropy(logits, labels, ignore_index=1)
    torch.testing.assert_close(loss, expected)
    assert "ignore_index=1" in repr(build_loss("rmi", num_classes=3, ignore_index=1))
