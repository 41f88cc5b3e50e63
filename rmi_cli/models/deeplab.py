"""DeepLabv3 and DeepLabv3+ as the paper's released code builds them (recipe section 3).

Where this differs from torchvision's `DeepLabHead`, it follows the authors' code, which produced
the paper's tables: the DeepLabv3 head is ASPP (with dropout) then a 1x1 classifier, without
torchvision's extra 3x3 conv + BN + ReLU; ASPP dropout is 0.1 (torchvision: 0.5); bilinear
resizing uses `align_corners=True` (DeepLab's 513 = 32k + 1 crops put feature and image corners
on the same points); head convs start from Kaiming-normal (fan in) with zero biases.

The final 1x1 classifier and the resizing to the input size always run in float32, outside any
autocast of the body: the logits reaching the loss, the argmax and the saved probabilities are
float32 as in the released code (fp32 throughout), whose RMI statistics depend on small
differences of the probabilities that bf16's 8-bit mantissa would round away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rmi_cli.config import DEFAULT_HEAD_LR_MULT
from rmi_cli.models.backbones import BackboneFeatures, ResNetBackbone
from rmi_cli.registry import Registry

ASPP_CHANNELS = 256
LOW_LEVEL_CHANNELS = 48
DECODER_CHANNELS = 256
ASPP_RATES: dict[int, tuple[int, int, int]] = {16: (6, 12, 18), 8: (12, 24, 36)}


def classify(classifier: nn.Module, features: Tensor) -> Tensor:
    """`classifier(features)` in float32, whatever autocast surrounds it: (B, C, h, w) logits.
    (At least float32: a float64 model, as the float64 tests build, stays float64.)"""
    with torch.autocast(features.device.type, enabled=False):
        return classifier(at_least_float32(features))


def at_least_float32(x: Tensor) -> Tensor:
    """`x` as float32 when it is a narrower float (bf16, fp16); float64 stays float64."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resizing with the corner alignment of the authors' code."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1
) -> nn.Sequential:
    padding = dilation * (kernel_size // 2)
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ASPPPooling(nn.Sequential):
    """Image-level features: global average, 1x1 conv, BN, ReLU, spread back over the map.

    Its BN sees one value per image and channel, so training needs a batch of at least 2 (as in
    the authors' code and torchvision); evaluation works with any batch.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        pooled = super().forward(x)  # (B, C, 1, 1)
        # Bilinear upsampling of a 1x1 map is a broadcast, whatever the corner convention.
        return pooled.expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """1x1 + three 3x3 atrous convs + image pooling, concatenated, projected by a 1x1 conv."""

    def __init__(self, in_channels: int, rates: Sequence[int], *, dropout: float) -> None:
        super().__init__()
        branches = [conv_bn_relu(in_channels, ASPP_CHANNELS, 1)]
        branches += [conv_bn_relu(in_channels, ASPP_CHANNELS, 3, dilation=r) for r in rates]
        branches.append(ASPPPooling(in_channels, ASPP_CHANNELS))
        self.rates = tuple(rates)
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(
            *conv_bn_relu(len(branches) * ASPP_CHANNELS, ASPP_CHANNELS, 1), nn.Dropout(dropout)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3Head(nn.Module):
    """ASPP on layer4, then a 1x1 classifier: logits at the backbone's output stride."""

    def __init__(self, backbone: ResNetBackbone, *, num_classes: int, dropout: float) -> None:
        super().__init__()
        rates = ASPP_RATES[backbone.output_stride]
        self.aspp = ASPP(backbone.high_channels, rates, dropout=dropout)
        self.classifier = nn.Conv2d(ASPP_CHANNELS, num_classes, 1)

    def forward(self, features: BackboneFeatures) -> Tensor:
        return classify(self.classifier, self.aspp(features.high))


class DeepLabV3PlusHead(nn.Module):
    """ASPP, upsampled to layer1's size and joined with its 48-channel projection; two 3x3
    convs, dropout, a 1x1 classifier: logits at stride 4."""

    def __init__(self, backbone: ResNetBackbone, *, num_classes: int, dropout: float) -> None:
        super().__init__()
        rates = ASPP_RATES[backbone.output_stride]
        self.aspp = ASPP(backbone.high_channels, rates, dropout=dropout)
        self.low_level = conv_bn_relu(backbone.low_channels, LOW_LEVEL_CHANNELS, 1)
        self.fuse = nn.Sequential(
            *conv_bn_relu(ASPP_CHANNELS + LOW_LEVEL_CHANNELS, DECODER_CHANNELS, 3),
            *conv_bn_relu(DECODER_CHANNELS, DECODER_CHANNELS, 3),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Conv2d(DECODER_CHANNELS, num_classes, 1)

    def forward(self, features: BackboneFeatures) -> Tensor:
        low = self.low_level(features.low)  # (B, 48, H/4, W/4)
        context = resize(self.aspp(features.high), low.shape[-2:])  # (B, 256, H/4, W/4)
        fused = self.fuse(torch.cat([context, low], dim=1))
        return classify(self.classifier, fused)


class SegmentationModel(nn.Module):
    """A backbone and a head; logits come back at the input size.

    `head` holds every module that is not the backbone, so an optimiser can give it its own
    learning-rate multiplier (`default_head_lr_mult`: `config.DEFAULT_HEAD_LR_MULT`).
    """

    def __init__(
        self, backbone: ResNetBackbone, head: nn.Module, *, default_head_lr_mult: float
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.default_head_lr_mult = default_head_lr_mult

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes, H, W) float32 logits."""
        logits = self.head(self.backbone(images))  # (B, C, H/4 or H/OS, W/4 or W/OS) float32
        with torch.autocast(logits.device.type, enabled=False):
            return resize(at_least_float32(logits), images.shape[-2:])


def deeplabv3(
    backbone: ResNetBackbone, *, num_classes: int, dropout: float = 0.1
) -> SegmentationModel:
    """DeepLabv3: ASPP + 1x1 classifier on `backbone`; the head learns 10x faster by default."""
    head = DeepLabV3Head(backbone, num_classes=num_classes, dropout=dropout)
    _init_head(head)
    return SegmentationModel(backbone, head, default_head_lr_mult=DEFAULT_HEAD_LR_MULT["deeplabv3"])


def deeplabv3plus(
    backbone: ResNetBackbone, *, num_classes: int, dropout: float = 0.1
) -> SegmentationModel:
    """DeepLabv3+: ASPP + the layer1 decoder on `backbone`; the head learns 5x faster by default."""
    head = DeepLabV3PlusHead(backbone, num_classes=num_classes, dropout=dropout)
    _init_head(head)
    return SegmentationModel(
        backbone, head, default_head_lr_mult=DEFAULT_HEAD_LR_MULT["deeplabv3plus"]
    )


ModelBuilder = Callable[..., SegmentationModel]

# keys: config.ModelName
MODELS: Registry[ModelBuilder] = Registry("model")
MODELS.register("deeplabv3", deeplabv3)
MODELS.register("deeplabv3plus", deeplabv3plus)


def _init_head(head: nn.Module) -> None:
    for m in head.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
