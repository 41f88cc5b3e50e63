"""DeepLabv3 / v3+ as recipe section 3 describes them, on every backbone and output stride."""

from __future__ import annotations

import typing

import pytest
import torch
from torch import nn

from rmi_cli import config
from rmi_cli.config import ModelConfig
from rmi_cli.models import ASPP_RATES, BACKBONES, MODELS, BackboneFeatures, build_model
from rmi_cli.models.deeplab import ASPPPooling

NUM_CLASSES = 3
COMBINATIONS = [
    (name, backbone, stride, deep_stem)
    for name in typing.get_args(config.ModelName)
    for backbone in typing.get_args(config.BackboneName)
    for stride in (16, 8)
    for deep_stem in (False, True)
]


def tiny_model(**fields: object) -> nn.Module:
    defaults: dict[str, object] = {"backbone": "resnet18"}
    return build_model(ModelConfig(**(defaults | fields)), num_classes=NUM_CLASSES)


def test_registries_match_the_configuration_literals() -> None:
    assert tuple(MODELS) == typing.get_args(config.ModelName)
    assert tuple(BACKBONES) == typing.get_args(config.BackboneName)


@pytest.mark.parametrize(("name", "backbone", "stride", "deep_stem"), COMBINATIONS)
def test_forward_and_backward_on_a_tiny_batch(
    name: str, backbone: str, stride: int, deep_stem: bool
) -> None:
    torch.manual_seed(0)
    model = tiny_model(name=name, backbone=backbone, output_stride=stride, deep_stem=deep_stem)
    model.train()
    seen: list[BackboneFeatures] = []
    model.backbone.register_forward_hook(lambda module, args, output: seen.append(output))
    images = torch.randn(2, 3, 65, 65)  # batch 2: the image-pooling BN needs 2 values in training
    logits = model(images)
    assert logits.shape == (2, NUM_CLASSES, 65, 65)
    # The effective output stride: 65 -> 33 -> 17 (stride 4) -> 9 (8) -> 5 (16) with padding.
    low_channels, high_channels = (64, 512) if backbone == "resnet18" else (256, 2048)
    side = {8: 9, 16: 5}[stride]
    assert seen[0].low.shape == (2, low_channels, 17, 17)
    assert seen[0].high.shape == (2, high_channels, side, side)
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    starved = [
        n
        for n, p in model.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0
    ]
    assert not starved, f"parameters without a usable gradient: {starved[:5]}"


@pytest.mark.parametrize("name", typing.get_args(config.ModelName))
def test_evaluation_works_on_a_single_image_of_odd_size(name: str) -> None:
    model = tiny_model(name=name).eval()
    with torch.inference_mode():
        logits = model(torch.randn(1, 3, 50, 77))
    assert logits.shape == (1, NUM_CLASSES, 50, 77)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("stride", [16, 8])
@pytest.mark.parametrize("name", typing.get_args(config.ModelName))
def test_aspp_rates_follow_the_output_stride(name: str, stride: int) -> None:
    aspp = tiny_model(name=name, output_stride=stride).head.aspp
    expected = {16: (6, 12, 18), 8: (12, 24, 36)}[stride]
    assert ASPP_RATES[stride] == expected
    one_by_one, *atrous, pooling = aspp.branches
    assert one_by_one[0].kernel_size == (1, 1)
    assert tuple(branch[0].dilation[0] for branch in atrous) == expected
    assert all(branch[0].padding == branch[0].dilation for branch in atrous)
    assert isinstance(pooling, ASPPPooling)
    convs = [m for m in aspp.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.out_channels == 256 for c in convs)
    assert aspp.project[0].in_channels == 5 * 256


def test_deeplabv3_head_is_aspp_then_a_1x1_classifier() -> None:
    model = tiny_model(name="deeplabv3", backbone="resnet50", dropout=0.25)
    assert [name for name, _ in model.head.named_children()] == ["aspp", "classifier"]
    assert model.head.aspp.branches[0][0].in_channels == 2048
    project = model.head.aspp.project
    assert [type(m) for m in project] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Dropout]
    assert project[-1].p == 0.25
    classifier = model.head.classifier
    assert (classifier.in_channels, classifier.out_channels) == (256, NUM_CLASSES)
    assert classifier.kernel_size == (1, 1) and classifier.bias is not None
    assert model.default_head_lr_mult == 10.0


@pytest.mark.parametrize(("backbone", "low_channels"), [("resnet18", 64), ("resnet50", 256)])
def test_deeplabv3plus_decoder_channels(backbone: str, low_channels: int) -> None:
    model = tiny_model(name="deeplabv3plus", backbone=backbone)
    head = model.head
    assert (head.low_level[0].in_channels, head.low_level[0].out_channels) == (low_channels, 48)
    assert head.low_level[0].kernel_size == (1, 1)
    fuse_convs = [m for m in head.fuse if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in fuse_convs] == [
        (256 + 48, 256, (3, 3)),
        (256, 256, (3, 3)),
    ]
    assert isinstance(head.fuse[-1], nn.Dropout) and head.fuse[-1].p == 0.1
    assert (head.classifier.in_channels, head.classifier.out_channels) == (256, NUM_CLASSES)
    assert model.default_head_lr_mult == 5.0


def test_deeplabv3plus_joins_aspp_and_layer1_at_stride_4() -> None:
    model = tiny_model(name="deeplabv3plus").eval()
    seen: dict[str, torch.Size] = {}
    model.head.fuse.register_forward_hook(lambda m, i, o: seen.update(fuse_in=i[0].shape))
    with torch.inference_mode():
        model(torch.randn(1, 3, 64, 64))
    assert seen["fuse_in"] == (1, 256 + 48, 16, 16)


def test_head_holds_everything_that_is_not_the_backbone() -> None:
    model = tiny_model(name="deeplabv3plus")
    assert [name for name, _ in model.named_children()] == ["backbone", "head"]
    backbone = {id(p) for p in model.backbone.parameters()}
    head = {id(p) for p in model.head.parameters()}
    assert not backbone & head
    assert backbone | head == {id(p) for p in model.parameters()}
