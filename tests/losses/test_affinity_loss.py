"""The affinity field loss: reference parity, masking of ignored pairs, CE part, decay."""

from __future__ import annotations

import pytest
import rmi_reference as ref
import torch
import torch.nn.functional as F

from rmi_cli.losses import affinity_field_loss
from rmi_cli.losses.affinity import affinity_terms


def inputs(shape: tuple[int, int, int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    batch, classes, height, width = shape
    logits = torch.randn(shape, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, classes, (batch, height, width), generator=gen)
    labels[torch.rand(labels.shape, generator=gen) < 0.2] = 255
    labels[torch.rand(labels.shape, generator=gen) < 0.05] = classes
    return logits, labels


@pytest.mark.parametrize(("downsample", "height", "width"), [(1, 7, 6), (2, 15, 12), (8, 57, 49)])
def test_matches_the_python_loop_reference(downsample: int, height: int, width: int) -> None:
    logits, labels = inputs((2, 3, height, width), seed=downsample)
    options = {"downsample": downsample, "progress": 0.3, "kld_margin": 2.5, "lambda_edge": 0.7}
    loss = affinity_field_loss(logits, labels, **options)
    assert loss.item() == pytest.approx(ref.affinity_loss(logits, labels, **options), rel=1e-12)


def test_ce_part_equals_cross_entropy() -> None:
    logits, labels = inputs((2, 4, 16, 16), seed=0)
    labels[labels == 4] = 255  # F.cross_entropy itself cannot take labels >= C
    loss = affinity_field_loss(logits, labels, lambda_edge=0.0, lambda_non_edge=0.0)
    expected = F.cross_entropy(logits, labels, ignore_index=255)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)


def test_pairs_touching_ignored_pixels_are_masked() -> None:
    logits, labels = inputs((2, 3, 10, 9), seed=1)
    logits.requires_grad_(True)
    ignored = (labels == 255) | (labels >= 3)
    loss = affinity_field_loss(logits, labels, downsample=1)
    (grad,) = torch.autograd.grad(loss, logits)
    # Neither the CE nor any pair sees an ignored pixel: no gradient, and changing its logits
    # changes nothing.
    assert grad.masked_select(ignored.unsqueeze(1)).abs().max() == 0
    changed = torch.where(ignored.unsqueeze(1), torch.randn_like(logits) * 10, logits)
    assert affinity_field_loss(changed, labels, downsample=1) == loss


def test_only_edges_or_no_pairs_give_no_nan() -> None:
    probs = torch.softmax(torch.randn(1, 2, 4, 4, dtype=torch.float64), 1)
    checker = (torch.arange(4).view(-1, 1) + torch.arange(4)) % 2
    edge, non_edge = affinity_terms(checker.unsqueeze(0), probs, 3.0)
    assert torch.isfinite(edge) and edge > 0
    # Every pixel ignored: no pairs at all, both means are 0 (Ke et al.'s code gave NaN).
    edge, non_edge = affinity_terms(torch.full((1, 4, 4), 2), probs, 3.0)
    assert edge == 0 and non_edge == 0


def test_decay_scales_the_affinity_term_only() -> None:
    logits, labels = inputs((1, 3, 32, 32), seed=2)
    ce = affinity_field_loss(logits, labels, lambda_edge=0.0, lambda_non_edge=0.0)
    start = affinity_field_loss(logits, labels, progress=0.0) - ce
    end = affinity_field_loss(logits, labels, progress=1.0, decay_base=10.0) - ce
    assert end.item() == pytest.approx(start.item() / 10.0, rel=1e-10)
