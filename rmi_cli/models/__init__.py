"""DeepLabv3 / DeepLabv3+ on ResNet backbones (recipe section 3); torch only.

`build_model(cfg, num_classes=...)` is the entry point; `MODELS` and `BACKBONES` are the registries
(keys = `config.ModelName` / `config.BackboneName`); `split_parameters` gives the optimiser's
backbone/head x decay/no-decay groups.
"""

from rmi_cli.models.backbones import BACKBONES, BackboneFeatures, ResNetBackbone, build_resnet
from rmi_cli.models.build import build_model
from rmi_cli.models.deeplab import ASPP_RATES, MODELS, SegmentationModel, deeplabv3, deeplabv3plus
from rmi_cli.models.params import GROUP_NAMES, split_parameters
from rmi_cli.models.pretrained import IMAGENET, backbone_state_dict, load_pretrained

__all__ = [
    "ASPP_RATES",
    "BACKBONES",
    "GROUP_NAMES",
    "IMAGENET",
    "MODELS",
    "BackboneFeatures",
    "ResNetBackbone",
    "SegmentationModel",
    "backbone_state_dict",
    "build_model",
    "build_resnet",
    "deeplabv3",
    "deeplabv3plus",
    "load_pretrained",
    "split_parameters",
]
