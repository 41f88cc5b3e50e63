"""SGD parameter groups: weight decay on conv/linear weights only, head learning-rate multiplier."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rmi_cli.config import ModelConfig, TrainConfig
from rmi_cli.engine.optim import build_optimizer, set_lr
from rmi_cli.models import build_model


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(name="deeplabv3plus", backbone="resnet18"), num_classes=3)


def _groups_by_name(optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    return {group["name"]: group for group in optimizer.param_groups}


def test_weight_decay_only_on_conv_and_linear_weights(model: nn.Module) -> None:
    optimizer = build_optimizer(model, TrainConfig(iterations=10, weight_decay=1e-4))
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    conv_weights = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert decayed == conv_weights
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert id(module.weight) not in decayed and id(module.bias) not in decayed
    every = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(every) == len({id(p) for p in every}) == len(list(model.parameters()))
    assert optimizer.defaults["momentum"] == 0.9


def test_head_multiplier_defaults_to_the_model_and_can_be_configured(model: nn.Module) -> None:
    default = _groups_by_name(build_optimizer(model, TrainConfig(iterations=10)))
    assert default["head/decay"]["lr_mult"] == 5.0  # DeepLabv3+
    assert default["backbone/decay"]["lr_mult"] == 1.0
    head_ids = {id(p) for p in model.head.parameters()}
    assert {id(p) for p in default["head/decay"]["params"]} <= head_ids
    optimizer = build_optimizer(model, TrainConfig(iterations=10, head_lr_mult=2.5))
    set_lr(optimizer, 0.01)
    groups = _groups_by_name(optimizer)
    assert groups["head/no_decay"]["lr"] == pytest.approx(0.025)
    assert groups["backbone/no_decay"]["lr"] == 0.01
    assert groups["backbone/no_decay"]["weight_decay"] == 0.0


@pytest.mark.parametrize(
    ("experiment", "model_name", "expected"),
    [
        ("camvid-table4", "deeplabv3", 10.0),
        ("camvid-table4", "deeplabv3plus", 10.0),  # the released CamVid branch: x10 for v3+ too
        ("voc-table1", "deeplabv3", 10.0),
        ("voc-table1", "deeplabv3plus", 5.0),
    ],
)
def test_head_multiplier_per_dataset_and_model(
    experiment: str, model_name: str, expected: float
) -> None:
    from rmi_cli.manifest import load_manifest

    manifest = load_manifest(Path(__file__).resolve().parents[2] / "experiments.yaml")
    run = next(r for r in manifest.plan(experiment).runs if r.config.model.name == model_name)
    # the run's own model and training configuration, on a small backbone without weights
    small = run.config.model.model_copy(update={"backbone": "resnet18", "pretrained": None})
    model = build_model(small, num_classes=3)
    groups = _groups_by_name(build_optimizer(model, run.config.train))
    assert groups["head/decay"]["lr_mult"] == groups["head/no_decay"]["lr_mult"] == expected
    assert groups["backbone/decay"]["lr_mult"] == 1.0
    assert run.config.head_lr_mult() == expected
