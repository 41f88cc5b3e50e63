"""Softmax CE and the sigmoid BCE term against PyTorch's own functions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rmi_cli.losses import bce_loss, ce_loss, rmi_loss


def inputs(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(2, 4, 11, 13, generator=gen, dtype=torch.float64) * 5).to(dtype)
    labels = torch.randint(0, 4, (2, 11, 13), generator=gen)
    labels[:, :2] = 255
    return logits, labels


def test_ce_is_f_cross_entropy_and_ignores_labels_beyond_the_classes() -> None:
    logits, labels = inputs()
    expected = F.cross_entropy(logits, labels, ignore_index=255)
    torch.testing.assert_close(ce_loss(logits, labels), expected, rtol=1e-12, atol=0)
    beyond = torch.where(labels == 255, 4, labels)  # e.g. CamVid's void 11 with 11 classes
    torch.testing.assert_close(ce_loss(logits, beyond), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("loss_fn", [ce_loss, bce_loss])
def test_all_ignored_gives_zero_not_nan(loss_fn: object) -> None:
    logits, _ = inputs()
    logits.requires_grad_(True)
    loss = loss_fn(logits, torch.full((2, 11, 13), 255))
    loss.backward()
    assert loss.item() == 0.0
    assert logits.grad.abs().max() == 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_bce_is_the_released_pixel_term(dtype: torch.dtype) -> None:
    logits, labels = inputs(dtype)
    valid = labels < 4
    target = F.one_hot(torch.where(valid, labels, 0), 4).permute(0, 3, 1, 2).to(dtype)
    weight = valid.unsqueeze(1).to(dtype).expand_as(target)
    total = F.binary_cross_entropy_with_logits(logits, target * weight, weight, reduction="sum")
    expected = total / (valid.sum() + 1)
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(bce_loss(logits, labels), expected, rtol=rtol, atol=0)
    # And it is the weight_lambda = 1 end of the RMI objective.
    torch.testing.assert_close(
        rmi_loss(logits, labels, num_classes=4, weight_lambda=1.0), expected, rtol=rtol, atol=0
    )


def test_bce_gradient_matches_autograd_of_the_formula() -> None:
    logits, labels = inputs()
    logits.requires_grad_(True)
    valid = labels < 4
    target = F.one_hot(torch.where(valid, labels, 0), 4).permute(0, 3, 1, 2).double()
    weight = valid.unsqueeze(1).double().expand_as(target)
    formula = F.binary_cross_entropy_with_logits(logits, target, weight, reduction="sum")
    (expected,) = torch.autograd.grad(formula / (valid.sum() + 1), logits)
    (grad,) = torch.autograd.grad(bce_loss(logits, labels), logits)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)
