"""Where and how a run executes: device choice, determinism switches, memory format."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TypeVar

import torch
from torch import nn

from rmi_cli.errors import ConfigError

M = TypeVar("M", bound=nn.Module)  # any module; place_model returns the same type


def resolve_device(spec: str) -> torch.device:
    """`auto` picks CUDA when available; asking for CUDA without it is a configuration error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device is {spec!r} but CUDA is not available on this machine; "
                f"use device: auto or cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"train.device is {spec!r} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return device


@contextlib.contextmanager
def numerics(*, deterministic: bool, device: torch.device) -> Iterator[None]:
    """Set the determinism/autotuning switches for one run and restore the previous ones after.

    Deterministic mode warns instead of failing where PyTorch has no deterministic kernel (e.g.
    the backward of bilinear upsampling on CUDA). cuBLAS reads CUBLAS_WORKSPACE_CONFIG only when
    CUDA initialises, so setting it here helps only if nothing touched CUDA earlier in the
    process; export it in the environment to be sure.
    """
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    try:
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        else:
            # Training crops have one fixed size, so cuDNN's autotuner pays off after step 1.
            torch.backends.cudnn.benchmark = device.type == "cuda"
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic = saved[2]
        torch.backends.cudnn.benchmark = saved[3]


def uses_channels_last(enabled: bool, device: torch.device) -> bool:
    """channels_last only pays off with CUDA's tensor-core kernels; CPU runs stay NCHW."""
    return enabled and device.type == "cuda"


def place_model(model: M, device: torch.device, *, channels_last: bool) -> M:
    """Move the model to `device`, in channels_last when asked (and useful there)."""
    model = model.to(device)
    if uses_channels_last(channels_last, device):
        model = model.to(memory_format=torch.channels_last)
    return model


def to_input(images: torch.Tensor, *, channels_last: bool) -> torch.Tensor:
    """A batch in the memory format the model was placed in."""
    if channels_last and images.device.type == "cuda":
        return images.contiguous(memory_format=torch.channels_last)
    return images
