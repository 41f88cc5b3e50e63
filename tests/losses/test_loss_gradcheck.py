"""`torch.autograd.gradcheck` in float64 on small inputs, for every loss and RMI pooling.

The default RMI case runs the full Jacobian check; the others use gradcheck's fast mode (a
random projection of the Jacobian) to keep the suite quick on two shared cores.
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from rmi_cli.losses import affinity_field_loss, bce_loss, ce_loss, rmi_loss, rmi_per_class


def inputs(shape: tuple[int, int, int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    batch, classes, height, width = shape
    labels = torch.randint(0, classes, (batch, height, width), generator=gen)
    labels[torch.rand(labels.shape, generator=gen) < 0.15] = 255
    return logits, labels


@pytest.mark.parametrize(
    ("pool", "pool_size", "radius"),
    [("avg", 2, 2), ("max", 2, 2), ("nearest", 2, 2), ("avg", 3, 1), ("max", 1, 3)],
)
def test_rmi_loss_gradcheck(pool: str, pool_size: int, radius: int) -> None:
    logits, labels = inputs((1, 2, 7, 6), seed=pool_size + radius)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return rmi_loss(x, labels, num_classes=2, radius=radius, pool=pool, pool_size=pool_size)

    fast = (pool, pool_size, radius) != ("avg", 2, 2)
    assert gradcheck(loss, (logits,), eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=fast)


def test_rmi_per_class_gradcheck() -> None:
    logits, labels = inputs((2, 2, 6, 6), seed=4)

    def values(x: torch.Tensor) -> torch.Tensor:
        return rmi_per_class(x, labels, num_classes=2, radius=2, pool_size=2)

    assert gradcheck(values, (logits,), eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)


@pytest.mark.parametrize("loss_fn", [bce_loss, ce_loss])
def test_pixelwise_gradcheck(loss_fn: object) -> None:
    logits, labels = inputs((2, 3, 5, 4), seed=6)
    assert gradcheck(lambda x: loss_fn(x, labels), (logits,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("downsample", [1, 2])
def test_affinity_gradcheck(downsample: int) -> None:
    logits, labels = inputs((1, 3, 8, 6), seed=7)

    def loss(x: torch.Tensor) -> torch.Tensor:
        return affinity_field_loss(x, labels, downsample=downsample, progress=0.5)

    assert gradcheck(loss, (logits,), eps=1e-6, atol=1e-6, fast_mode=True)
