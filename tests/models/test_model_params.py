"""Optimiser parameter groups, and the package's place in the layering."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from torch import nn

from rmi_cli.config import ModelConfig
from rmi_cli.models import GROUP_NAMES, build_model, split_parameters


@pytest.mark.parametrize("name", ["deeplabv3", "deeplabv3plus"])
def test_groups_partition_every_parameter_exactly_once(name: str) -> None:
    model = build_model(ModelConfig(name=name, backbone="resnet18", deep_stem=True), num_classes=3)
    groups = split_parameters(model)
    assert tuple(groups) == GROUP_NAMES
    assert all(groups.values()), "every group is populated for a DeepLab model"
    grouped = [id(p) for params in groups.values() for p in params]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in model.parameters()}


def test_only_conv_and_linear_weights_decay() -> None:
    model = build_model(ModelConfig(name="deeplabv3", backbone="resnet18"), num_classes=3)
    groups = {name: {id(p) for p in params} for name, params in split_parameters(model).items()}
    backbone, head = model.backbone, model.head
    assert id(backbone.conv1.weight) in groups["backbone/decay"]
    assert id(backbone.bn1.weight) in groups["backbone/no_decay"]
    assert id(backbone.bn1.bias) in groups["backbone/no_decay"]
    assert id(head.classifier.weight) in groups["head/decay"]
    assert id(head.classifier.bias) in groups["head/no_decay"]
    batchnorms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    decayed = groups["backbone/decay"] | groups["head/decay"]
    assert not {id(p) for bn in batchnorms for p in bn.parameters()} & decayed


def test_importing_the_models_package_stays_in_its_layer() -> None:
    code = (
        "import sys, json; import rmi_cli.models; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    imported = set(json.loads(result.stdout))
    assert not imported & {"sqlalchemy", "alembic", "typer", "yaml", "pandas"}
