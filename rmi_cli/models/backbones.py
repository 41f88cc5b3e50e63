"""ResNet backbones for DeepLab (recipe section 3).

torchvision's ResNet-18/50/101 (built with `weights=None`) in one of two layouts
(`config.BackboneLayout`), optionally with the paper's deep stem (three 3x3 convs, 64-64-128
channels, instead of the 7x7 conv). The backbone returns the low-level (layer1, stride 4) and
high-level (layer4, stride 8 or 16) features.

- "dilated" (torchvision's DeepLab): the last stage (two at output stride 8) trades its stride
  for atrous convolution, so layer4 sees a wider context at the same resolution.
- "released" (the authors' `resnet_v1.py`, which produced the paper's numbers): stage strides
  [1, 2, 2, 1] at output stride 16 ([1, 2, 1, 1] at 8) and dilation 1 in every stage (its own
  comment: "slightly different with the official implementation"); the last BN of every residual
  block starts at zero (`zero_init_residual`), so each block starts as the identity. Pretrained
  weights overwrite those zeros, as in the released code.

The deep stem uses the module layout of the authors' code and of PyTorch-Encoding, whose
ImageNet weights they loaded: `conv1` is a Sequential (conv, BN, ReLU, conv, BN, ReLU, conv) and
`bn1` normalises its 128 channels. Every other key is torchvision's, so a torchvision state dict
loads as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from torch import Tensor, nn
from torchvision.models import resnet

from rmi_cli.config import BackboneLayout
from rmi_cli.registry import Registry

STEM_CHANNELS = (64, 64, 128)

# Which of layer2, layer3, layer4 trade their stride for dilation; the same choice as torchvision's
# `replace_stride_with_dilation`, which DeepLab uses for output strides 16 and 8.
DILATED_LAYERS: dict[int, tuple[bool, bool, bool]] = {
    16: (False, False, True),
    8: (False, True, True),
}
# The released layout's strides of layer1..layer4 (`resnet_v1.py`: [1, 2, 2 if OS 16 else 1, 1]).
RELEASED_STRIDES: dict[int, tuple[int, int, int, int]] = {16: (1, 2, 2, 1), 8: (1, 2, 1, 1)}

_TORCHVISION: dict[str, Callable[..., resnet.ResNet]] = {
    "resnet18": resnet.resnet18,
    "resnet50": resnet.resnet50,
    "resnet101": resnet.resnet101,
}


class BackboneFeatures(NamedTuple):
    """What the DeepLab heads read from the backbone."""

    low: Tensor  # (B, low_channels, H/4, W/4), layer1
    high: Tensor  # (B, high_channels, H/OS, W/OS), layer4


class ResNetBackbone(nn.Module):
    """A torchvision ResNet without its classifier; state-dict keys are torchvision's."""

    def __init__(
        self,
        net: resnet.ResNet,
        *,
        name: str,
        output_stride: int,
        deep_stem: bool,
        layout: BackboneLayout = "dilated",
    ) -> None:
        super().__init__()
        self.conv1 = net.conv1
        self.bn1 = net.bn1
        self.relu = net.relu
        self.maxpool = net.maxpool
        self.layer1 = net.layer1
        self.layer2 = net.layer2
        self.layer3 = net.layer3
        self.layer4 = net.layer4
        expansion = type(net.layer1[0]).expansion
        self.name = name
        self.output_stride = output_stride
        self.deep_stem = deep_stem
        self.layout = layout
        self.low_channels = 64 * expansion
        self.high_channels = 512 * expansion

    def forward(self, images: Tensor) -> BackboneFeatures:
        stem = self.maxpool(self.relu(self.bn1(self.conv1(images))))  # (B, 64|128, H/4, W/4)
        low = self.layer1(stem)
        high = self.layer4(self.layer3(self.layer2(low)))
        return BackboneFeatures(low=low, high=high)

    def describe(self) -> str:
        """How error messages name this backbone, e.g. "resnet101 (deep stem)"."""
        return f"{self.name} ({'deep stem' if self.deep_stem else '7x7 stem'})"


def build_resnet(
    name: str,
    *,
    deep_stem: bool = False,
    output_stride: int = 16,
    layout: BackboneLayout = "dilated",
) -> ResNetBackbone:
    """A randomly initialised ResNet backbone (pretrained weights are loaded separately)."""
    if output_stride not in DILATED_LAYERS:
        raise ValueError(
            f"output_stride must be one of {sorted(DILATED_LAYERS)}; got {output_stride}"
        )
    net = _TORCHVISION[name](weights=None, zero_init_residual=layout == "released")
    if deep_stem:
        _replace_stem(net)
    if layout == "released":
        _apply_strides(net, RELEASED_STRIDES[output_stride])
    else:
        _apply_output_stride(net, output_stride)
    return ResNetBackbone(
        net, name=name, output_stride=output_stride, deep_stem=deep_stem, layout=layout
    )


BackboneBuilder = Callable[..., ResNetBackbone]

BACKBONES: Registry[BackboneBuilder] = Registry("backbone")  # keys: config.BackboneName
BACKBONES.register("resnet18", partial(build_resnet, "resnet18"))
BACKBONES.register("resnet50", partial(build_resnet, "resnet50"))
BACKBONES.register("resnet101", partial(build_resnet, "resnet101"))


def _apply_output_stride(net: resnet.ResNet, output_stride: int) -> None:
    dilation = 1
    layers = (net.layer2, net.layer3, net.layer4)
    for layer, dilate in zip(layers, DILATED_LAYERS[output_stride], strict=True):
        if dilate:
            previous, dilation = dilation, dilation * 2
            _dilate_layer(layer, previous=previous, dilation=dilation)


def _apply_strides(net: resnet.ResNet, strides: tuple[int, int, int, int]) -> None:
    """Give each stage's first block the released layout's stride (dilation stays 1).

    torchvision builds layer1..4 with strides 1, 2, 2, 2; only layer4 (and layer3 at output
    stride 8) change, to stride 1: their first block's 3x3 conv and shortcut projection.
    """
    layers = (net.layer1, net.layer2, net.layer3, net.layer4)
    for layer, stride in zip(layers, strides, strict=True):
        first = layer[0]
        first.stride = stride
        for conv in _strided_convs(first):
            conv.stride = (stride, stride)


def _strided_convs(block: nn.Module) -> list[nn.Conv2d]:
    """The convs that carry a block's stride: its 3x3 conv (conv2 in a Bottleneck, conv1 in a
    BasicBlock, as torchvision places it) and the shortcut's 1x1 projection."""
    convs = [block.conv2 if isinstance(block, resnet.Bottleneck) else block.conv1]
    if isinstance(block.downsample, nn.Sequential):
        convs.append(block.downsample[0])  # torchvision's projection: (conv1x1, BatchNorm)
    return [conv for conv in convs if isinstance(conv, nn.Conv2d)]


def _dilate_layer(layer: nn.Sequential, *, previous: int, dilation: int) -> None:
    """Turn a stride-2 stage into a stride-1 stage with dilated 3x3 convs, in place.

    Works on the built blocks rather than through `replace_stride_with_dilation`, because
    torchvision's BasicBlock (ResNet-18) refuses dilation > 1. As in torchvision, the first
    block keeps the previous stage's dilation and the others use the new one.
    """
    for index, block in enumerate(layer):
        rate = previous if index == 0 else dilation
        block.stride = 1  # type: ignore[assignment]  # torchvision's blocks keep a plain int
        for conv in block.modules():
            if isinstance(conv, nn.Conv2d):
                conv.stride = (1, 1)
                if conv.kernel_size == (3, 3):
                    conv.dilation = (rate, rate)
                    conv.padding = (rate, rate)


def _replace_stem(net: resnet.ResNet) -> None:
    """The deep stem, and a first block that takes its 128 channels (as in PSPNet/Encoding)."""
    c1, c2, c3 = STEM_CHANNELS
    net.conv1 = nn.Sequential(
        nn.Conv2d(3, c1, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False),
        nn.BatchNorm2d(c2),
        nn.ReLU(inplace=True),
        nn.Conv2d(c2, c3, 3, padding=1, bias=False),
    )
    net.bn1 = nn.BatchNorm2d(c3)
    first = net.layer1[0]
    old = first.conv1
    first.conv1 = nn.Conv2d(
        c3, old.out_channels, old.kernel_size, stride=old.stride, padding=old.padding, bias=False
    )
    # 128 stem channels never equal layer1's width (64 or 256), so the shortcut needs a projection
    # even for ResNet-18, whose torchvision layer1 has none.
    width = 64 * type(first).expansion
    first.downsample = nn.Sequential(resnet.conv1x1(c3, width), nn.BatchNorm2d(width))
    for module in (net.conv1, net.bn1, first.conv1, first.downsample):
        _init_like_torchvision(module)


def _init_like_torchvision(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
