"""The losses on CUDA agree with the CPU (values and gradients), for every input precision.

Skipped without a GPU: the CPU suite cannot run them. On the GPU machine:
`python3 -m pytest -q tests/losses/test_loss_cuda.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from rmi_cli.losses import affinity_field_loss, bce_loss, ce_loss, rmi_loss, rmi_per_class

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def inputs(shape: tuple[int, int, int, int] = (2, 5, 37, 41)) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    logits = 3 * torch.randn(shape, generator=gen)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=gen)
    labels[:, :3] = 255  # a void band
    return logits, labels


Loss = Callable[[Tensor, Tensor], Tensor]


def value_and_grad(fn: Loss, logits: Tensor, labels: Tensor) -> tuple[float, Tensor]:
    logits = logits.detach().clone().requires_grad_(True)
    value = fn(logits, labels)
    value.backward()
    return value.item(), logits.grad.float().cpu()


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_rmi_on_cuda_equals_the_cpu(pool: str, layout: str) -> None:
    logits, labels = inputs()
    options = {"num_classes": 5, "pool": pool, "pool_size": 3, "radius": 3}
    cpu_value, cpu_grad = value_and_grad(lambda x, y: rmi_loss(x, y, **options), logits, labels)
    on_gpu = logits.cuda()
    if layout == "channels_last":
        on_gpu = on_gpu.contiguous(memory_format=torch.channels_last)
    gpu_value, gpu_grad = value_and_grad(
        lambda x, y: rmi_loss(x, y, **options), on_gpu, labels.cuda()
    )
    assert gpu_value == pytest.approx(cpu_value, rel=1e-5)
    torch.testing.assert_close(gpu_grad, cpu_grad, rtol=1e-4, atol=1e-7)
    per_class = rmi_per_class(logits.cuda(), labels.cuda(), **options)
    assert per_class.device.type == "cuda" and per_class.dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_logits_on_cuda_match_their_float32_values(dtype: torch.dtype) -> None:
    """Half inputs are upcast for the pixel terms and the statistics stay float64: the loss of
    the rounded logits is the float32 loss of the same (rounded) values."""
    logits, labels = inputs()
    rounded = logits.to(dtype)
    expected, expected_grad = value_and_grad(
        lambda x, y: rmi_loss(x, y, num_classes=5), rounded.float(), labels
    )
    value, grad = value_and_grad(
        lambda x, y: rmi_loss(x, y, num_classes=5), rounded.cuda(), labels.cuda()
    )
    assert value == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(grad, expected_grad, rtol=2e-2, atol=1e-6)  # the grad is half


@pytest.mark.parametrize(
    "loss",
    [
        lambda x, y: ce_loss(x, y, num_classes=5),
        lambda x, y: bce_loss(x, y, num_classes=5),
        lambda x, y: affinity_field_loss(x, y, num_classes=5),
    ],
    ids=["ce", "bce", "aaf"],
)
def test_comparators_on_cuda_equal_the_cpu(loss: Loss) -> None:
    logits, labels = inputs()
    cpu_value, cpu_grad = value_and_grad(loss, logits, labels)
    gpu_value, gpu_grad = value_and_grad(loss, logits.cuda(), labels.cuda())
    assert gpu_value == pytest.approx(cpu_value, rel=1e-5)
    torch.testing.assert_close(gpu_grad, cpu_grad, rtol=1e-4, atol=1e-7)
