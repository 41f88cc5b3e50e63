"""ResNet backbones: output stride by dilation, the deep stem, torchvision's key layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet

from rmi_cli.models import BACKBONES, build_resnet


def conv_geometry(module: nn.Module) -> dict[str, tuple[object, ...]]:
    return {
        name: (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation)
        for name, m in module.named_modules()
        if isinstance(m, nn.Conv2d)
    }


@pytest.mark.parametrize("stride", [16, 8])
def test_features_come_at_stride_4_and_at_the_output_stride(stride: int) -> None:
    backbone = BACKBONES["resnet50"](deep_stem=True, output_stride=stride).eval()
    with torch.inference_mode():
        features = backbone(torch.randn(1, 3, 64, 64))
    assert features.low.shape == (1, 256, 16, 16)
    assert features.high.shape == (1, 2048, 64 // stride, 64 // stride)
    assert (backbone.low_channels, backbone.high_channels) == (256, 2048)
    assert backbone.output_stride == stride


@pytest.mark.parametrize(
    ("stride", "replace"), [(16, [False, False, True]), (8, [False, True, True])]
)
def test_dilation_matches_torchvision_replace_stride_with_dilation(
    stride: int, replace: list[bool]
) -> None:
    reference = resnet.resnet50(weights=None, replace_stride_with_dilation=replace)
    ours = build_resnet("resnet50", output_stride=stride)
    assert conv_geometry(ours) == conv_geometry(reference)


def test_resnet18_is_dilated_although_torchvision_basicblock_refuses_it() -> None:
    with pytest.raises(NotImplementedError):
        resnet.resnet18(weights=None, replace_stride_with_dilation=[False, True, True])
    geometry = conv_geometry(build_resnet("resnet18", output_stride=8))
    # (stride, padding, dilation) of the 3x3 convs: the first block of a dilated stage keeps
    # the previous stage's rate, as torchvision does for bottlenecks.
    expected = {
        "layer2.0.conv1": (2, 1, 1),
        "layer3.0.conv1": (1, 1, 1),
        "layer3.0.conv2": (1, 1, 1),
        "layer3.1.conv1": (1, 2, 2),
        "layer3.1.conv2": (1, 2, 2),
        "layer4.0.conv1": (1, 2, 2),
        "layer4.0.conv2": (1, 2, 2),
        "layer4.1.conv1": (1, 4, 4),
        "layer4.1.conv2": (1, 4, 4),
    }
    for name, (stride, padding, dilation) in expected.items():
        assert geometry[name][3:] == ((stride, stride), (padding, padding), (dilation, dilation))
    assert geometry["layer3.0.downsample.0"][3] == (1, 1)
    assert geometry["layer4.0.downsample.0"][3] == (1, 1)


def test_dilated_backbone_keeps_torchvision_parameter_shapes() -> None:
    plain = resnet.resnet18(weights=None).state_dict()
    ours = build_resnet("resnet18", output_stride=8).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {
        k: v.shape for k, v in plain.items() if not k.startswith("fc.")
    }


@pytest.mark.parametrize(
    ("name", "first_conv", "shortcut"),
    [
        ("resnet101", (64, 128, 1, 1), (256, 128, 1, 1)),
        ("resnet18", (64, 128, 3, 3), (64, 128, 1, 1)),
    ],
)
def test_deep_stem_layout(
    name: str, first_conv: tuple[int, ...], shortcut: tuple[int, ...]
) -> None:
    shapes = {k: tuple(v.shape) for k, v in build_resnet(name, deep_stem=True).state_dict().items()}
    stem = {k: v for k, v in shapes.items() if k.startswith(("conv1.", "bn1."))}
    assert stem == {
        "conv1.0.weight": (64, 3, 3, 3),
        **{f"conv1.1.{p}": (64,) for p in ("weight", "bias", "running_mean", "running_var")},
        "conv1.1.num_batches_tracked": (),
        "conv1.3.weight": (64, 64, 3, 3),
        **{f"conv1.4.{p}": (64,) for p in ("weight", "bias", "running_mean", "running_var")},
        "conv1.4.num_batches_tracked": (),
        "conv1.6.weight": (128, 64, 3, 3),
        **{f"bn1.{p}": (128,) for p in ("weight", "bias", "running_mean", "running_var")},
        "bn1.num_batches_tracked": (),
    }
    assert shapes["layer1.0.conv1.weight"] == first_conv
    assert shapes["layer1.0.downsample.0.weight"] == shortcut
    assert shapes["layer1.0.downsample.1.weight"] == (shortcut[0],)


def test_deep_stem_halves_the_resolution_once_before_the_max_pool() -> None:
    stem = build_resnet("resnet50", deep_stem=True).conv1
    assert [c.stride for c in stem if isinstance(c, nn.Conv2d)] == [(2, 2), (1, 1), (1, 1)]
