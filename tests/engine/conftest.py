"""Tiny CPU runs for the engine tests: DeepLabv3-ResNet18 on 32x32 crops of synthetic scenes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from rmi_cli.config import RunConfig


def _tiny_config(*, loss: str = "ce", **train: Any) -> RunConfig:
    """A run small enough for a few CPU steps; `train` overrides TrainConfig fields."""
    train_fields: dict[str, Any] = {
        "iterations": 6,
        "batch_size": 2,
        "lr": 0.01,
        "warmup_iters": 2,
        "device": "cpu",
        "log_every": 2,
        "checkpoint_every": 3,
    }
    train_fields.update(train)
    return RunConfig.model_validate(
        {
            "model": {"name": "deeplabv3", "backbone": "resnet18"},
            "data": {
                "name": "synthetic",
                "synthetic": {
                    "height": 48,
                    "width": 64,
                    "train_images": 6,
                    "val_images": 3,
                    "test_images": 2,
                },
                "crop_size": 32,
                "scale_range": [0.75, 1.25],
                "workers": 0,
                "eval_split": "val",
            },
            "loss": {"name": loss},
            "train": train_fields,
            "eval": {"warmup_images": 2},
            "seed": 3,
        }
    )


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., RunConfig]:
    """`tiny_config(**train_overrides) -> RunConfig`."""
    return _tiny_config


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    """One thread: 32x32 crops gain nothing from more, and on busy shared cores OpenMP's
    spin-waiting threads made a 6-step run 7x slower (18 s instead of 2.7 s). Session scope, so
    that module-scoped reference runs use it too: CPU results depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
