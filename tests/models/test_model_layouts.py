"""The two backbone layouts (recipe section 3), BatchNorm momentum, and float32 logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import resnet

from rmi_cli.config import ModelConfig
from rmi_cli.models import build_model, build_resnet

SIDE = 64  # input side: 64 / 16 = 4 and 64 / 8 = 8 feature cells


def three_by_three(backbone: nn.Module) -> dict[str, nn.Conv2d]:
    return {
        name: m
        for name, m in backbone.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and name.startswith("layer")
    }


def stage_strides(backbone: nn.Module) -> list[int]:
    return [getattr(backbone, f"layer{i}")[0].conv2.stride[0] for i in range(1, 5)]


@pytest.mark.parametrize(("output_stride", "strides"), [(16, [1, 2, 2, 1]), (8, [1, 2, 1, 1])])
def test_released_layout_has_no_atrous_convolution(output_stride: int, strides: list[int]) -> None:
    backbone = build_resnet(
        "resnet50", deep_stem=True, output_stride=output_stride, layout="released"
    ).eval()
    assert stage_strides(backbone) == strides
    assert {m.dilation for m in three_by_three(backbone).values()} == {(1, 1)}
    assert {m.padding for m in three_by_three(backbone).values()} == {(1, 1)}
    for i, stride in enumerate(strides, start=1):
        shortcut = getattr(backbone, f"layer{i}")[0].downsample
        assert shortcut is None or shortcut[0].stride == (stride, stride)
    with torch.inference_mode():
        features = backbone(torch.randn(1, 3, SIDE, SIDE))
    assert features.low.shape[-2:] == (SIDE // 4, SIDE // 4)
    side = SIDE // output_stride
    assert features.high.shape == (1, 2048, side, side)


DILATION_RATES = {16: {"layer3": {1}, "layer4": {2}}, 8: {"layer3": {2}, "layer4": {4}}}


@pytest.mark.parametrize(("output_stride", "rates"), list(DILATION_RATES.items()))
def test_dilated_layout_trades_stride_for_dilation(
    output_stride: int, rates: dict[str, set[int]]
) -> None:
    backbone = build_resnet("resnet50", output_stride=output_stride, layout="dilated").eval()
    convs = three_by_three(backbone)
    for layer, expected in rates.items():
        # a dilated stage's first block keeps the previous stage's rate, as in torchvision
        later = {m.dilation[0] for n, m in convs.items() if n.startswith(layer) and ".0." not in n}
        assert later == expected
    assert stage_strides(backbone)[1] == 2 and stage_strides(backbone)[3] == 1
    with torch.inference_mode():
        features = backbone(torch.randn(1, 3, SIDE, SIDE))
    side = SIDE // output_stride
    assert features.high.shape == (1, 2048, side, side)


def test_released_layout_zero_initialises_the_last_bn_of_every_block() -> None:
    released = build_resnet("resnet50", deep_stem=True, layout="released")
    dilated = build_resnet("resnet50", deep_stem=True, layout="dilated")
    blocks = [m for m in released.modules() if isinstance(m, resnet.Bottleneck)]
    assert len(blocks) == 16
    assert all(torch.count_nonzero(block.bn3.weight) == 0 for block in blocks)
    assert all(torch.all(block.bn1.weight == 1) for block in blocks)
    others = [m for m in dilated.modules() if isinstance(m, resnet.Bottleneck)]
    assert all(torch.all(block.bn3.weight == 1) for block in others)
    # the residual branch adds zero: a block without projection is relu(x) at initialisation
    block = released.layer2[1].train()
    x = torch.randn(2, 512, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(x), rtol=0, atol=0)


def test_layouts_share_parameter_shapes_so_weights_load_in_both() -> None:
    shapes = [
        {k: v.shape for k, v in build_resnet("resnet50", layout=layout).state_dict().items()}
        for layout in ("dilated", "released")
    ]
    assert shapes[0] == shapes[1]


@pytest.mark.parametrize("momentum", [0.05, 0.1])
def test_bn_momentum_reaches_every_batchnorm(momentum: float) -> None:
    cfg = ModelConfig(
        name="deeplabv3plus",
        backbone="resnet18",
        deep_stem=True,
        layout="released",
        bn_momentum=momentum,
    )
    model = build_model(cfg, num_classes=3)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) > 20 and {m.momentum for m in norms} == {momentum}
    head = [m for m in model.head.modules() if isinstance(m, nn.BatchNorm2d)]
    assert head and {m.momentum for m in head} == {momentum}


def test_released_model_trains_on_a_tiny_batch() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(name="deeplabv3", backbone="resnet50", layout="released", bn_momentum=0.05)
    model = build_model(cfg, num_classes=3).train()
    logits = model(torch.randn(2, 3, SIDE, SIDE))
    assert logits.shape == (2, 3, SIDE, SIDE) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    # zero-initialised residual branches pass no gradient into their inner convs at step 0, but
    # their last BN's scale, the shortcuts, the stem and the head all learn
    assert model.backbone.layer4[0].bn3.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.head.classifier.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["deeplabv3", "deeplabv3plus"])
def test_logits_are_float32_from_a_float32_classifier_under_bf16_autocast(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, backbone="resnet18"), num_classes=5).eval()
    seen: dict[str, torch.Tensor] = {}
    model.head.classifier.register_forward_pre_hook(
        lambda module, args: seen.update(features=args[0])
    )
    body_dtypes: list[torch.dtype] = []
    model.backbone.layer4.register_forward_hook(
        lambda module, args, out: body_dtypes.append(out.dtype)
    )
    images = torch.randn(1, 3, 33, 41)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images)
    assert body_dtypes == [torch.bfloat16]  # the body did run under bf16 autocast
    assert logits.dtype == torch.float32 and seen["features"].dtype == torch.float32
    # the classifier and the resize, in float64 from the same (bf16-rounded) features
    classifier = model.head.classifier
    weight, bias = classifier.weight.double(), classifier.bias.double()
    expected = F.conv2d(seen["features"].double(), weight, bias)
    expected = F.interpolate(expected, size=(33, 41), mode="bilinear", align_corners=True)
    torch.testing.assert_close(logits.double(), expected, rtol=1e-5, atol=1e-5)
    # a bf16 classifier would be ~1e-2 off: the tolerance above tells the two apart
    low = (seen["features"].bfloat16(), classifier.weight.bfloat16(), classifier.bias.bfloat16())
    rounded = F.conv2d(*low).double()
    rounded = F.interpolate(rounded, size=(33, 41), mode="bilinear", align_corners=True)
    assert (rounded - expected).abs().max() > 1e-3
