"""Assembling one augmented training batch; shared by both loader back-ends so that they give
identical batches by construction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from rmi_cli.config import DataConfig
from rmi_cli.data.base import DatasetInfo
from rmi_cli.data.sampling import SlotPlan, slot_generator
from rmi_cli.data.transforms import augment_uint8, draw_params

# index -> (image uint8 (3, H, W), label uint8 (H, W)), on the device the batch is made on
SampleSource = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class AugmentSettings:
    """The recipe's augmentation for one run, resolved against the dataset's statistics."""

    crop_size: int
    scales: tuple[float, ...] | None
    scale_range: tuple[float, float] | None
    flip: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_config(cls, cfg: DataConfig, info: DatasetInfo) -> AugmentSettings:
        return cls(
            crop_size=cfg.crop_size,
            scales=cfg.scales,
            scale_range=cfg.scale_range,
            flip=cfg.flip,
            mean=cfg.mean or info.mean,
            std=cfg.std or info.std,
        )


def make_batch(
    source: SampleSource, plans: list[SlotPlan], settings: AugmentSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (B, 3, crop, crop) and uint8 labels (B, crop, crop), not yet normalised."""
    images, labels = [], []
    for plan in plans:
        image, label = source(plan.index)
        params = draw_params(
            slot_generator(plan),
            scales=settings.scales,
            scale_range=settings.scale_range,
            flip=settings.flip,
        )
        out = augment_uint8(image, label, params, crop_size=settings.crop_size, mean=settings.mean)
        images.append(out[0])
        labels.append(out[1])
    return torch.stack(images), torch.stack(labels)
