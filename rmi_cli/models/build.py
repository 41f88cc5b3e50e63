"""`build_model`: a run's `ModelConfig` -> a DeepLab model with its pretrained backbone."""

from __future__ import annotations

from torch import nn

from rmi_cli.config import ModelConfig
from rmi_cli.errors import ConfigError
from rmi_cli.models.backbones import BACKBONES
from rmi_cli.models.deeplab import MODELS, SegmentationModel
from rmi_cli.models.pretrained import load_pretrained


def build_model(cfg: ModelConfig, *, num_classes: int) -> SegmentationModel:
    """The model `cfg` describes, with `cfg.pretrained` loaded into its backbone.

    Raises `ConfigError` for unknown names and `CheckpointError` for weights that cannot be read
    or do not fit. Heads are always randomly initialised (the recipe pretrains the backbone only).
    """
    if num_classes < 1:
        raise ConfigError(f"a model needs at least one class; got num_classes={num_classes}")
    build_backbone = BACKBONES.get(cfg.backbone, field="model.backbone")
    build_head = MODELS.get(cfg.name, field="model.name")
    backbone = build_backbone(
        deep_stem=cfg.deep_stem, output_stride=cfg.output_stride, layout=cfg.layout
    )
    if cfg.pretrained is not None:
        load_pretrained(backbone, cfg.pretrained)
    model = build_head(backbone, num_classes=num_classes, dropout=cfg.dropout)
    set_bn_momentum(model, cfg.bn_momentum)
    return model


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """Every BatchNorm of `model`, backbone and head, as the released code passes its `bn_mom`
    to all of them (0.05 for ResNet-101; PyTorch's default is 0.1)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = momentum
