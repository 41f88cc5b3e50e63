"""Closed-form values and invariants of the RMI objective."""

from __future__ import annotations

import math

import pytest
import torch

from rmi_cli.losses import rmi_loss, rmi_per_class

ALPHA = 5e-4
FLOOR = math.log(math.sqrt(ALPHA) + 1e-8)  # a per-class value whose M is exactly 5e-4 I
BOUND = 0.5 * math.log(ALPHA)  # -3.8005: no (image, class) can go below it


def softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
@pytest.mark.parametrize("pool_size", [1, 2, 3])
def test_all_ignored_gives_the_floor_and_no_bce(pool: str, pool_size: int) -> None:
    logits = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    labels = torch.full((2, 9, 8), 255)
    loss = rmi_loss(logits, labels, num_classes=3, radius=2, pool=pool, pool_size=pool_size)
    # Labels all zero -> Syy = Syp = 0 -> M = 5e-4 I; the BCE sum is empty.
    assert loss.item() == pytest.approx(0.5 * 3 * FLOOR, rel=1e-12)


def test_radius_one_two_classes_by_hand() -> None:
    u, v, w, z = 1.5, -0.5, -2.0, 0.25
    logits = torch.tensor([[[[u, v, u, v]], [[w, z, w, z]]]], dtype=torch.float64)
    labels = torch.tensor([[[0, 1, 0, 1]]])
    per_class = rmi_per_class(logits, labels, num_classes=2, radius=1, pool_size=1)
    for c, (a, b) in enumerate([(u, v), (w, z)]):
        # y - mean = +-1/2, p - mean = +-delta/2 -> Syy = 1, Spp = delta^2, Syp = +-delta.
        delta = sigmoid(a) - sigmoid(b)
        m = 1.0 - delta**2 / (delta**2 + ALPHA) + ALPHA
        assert per_class[0, c].item() == pytest.approx(math.log(math.sqrt(m) + 1e-8), rel=1e-12)
    bce_sum = sum(softplus(-a) + softplus(b) for a, b in [(u, w), (z, v)]) * 2
    expected = 0.5 * bce_sum / (4 + 1) + 0.5 * per_class.sum().item()
    loss = rmi_loss(logits, labels, num_classes=2, radius=1, pool_size=1)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0])
def test_every_class_value_is_above_the_bound(pool: str, scale: float) -> None:
    gen = torch.Generator().manual_seed(int(scale * 10))
    labels = torch.randint(0, 4, (2, 24, 20), generator=gen)
    onehot = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).double()
    perfect = scale * (2 * onehot - 1)
    noisy = torch.randn(2, 4, 24, 20, generator=gen, dtype=torch.float64) * scale
    for logits in (perfect, noisy):
        per_class = rmi_per_class(logits, labels, num_classes=4, pool=pool, pool_size=2)
        assert (per_class >= BOUND - 1e-12).all()


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
def test_perfect_scores_better_than_noisy(pool: str) -> None:
    gen = torch.Generator().manual_seed(0)
    # Blocky labels, so that the regions have structure to capture.
    labels = torch.randint(0, 3, (2, 8, 8), generator=gen).repeat_interleave(4, 1)
    labels = labels.repeat_interleave(4, 2)
    onehot = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    perfect = 6 * (2 * onehot - 1)
    noisy = perfect + 6 * torch.randn(perfect.shape, generator=gen)
    options = {"num_classes": 3, "pool": pool, "pool_size": 2}
    assert rmi_loss(perfect, labels, **options) < rmi_loss(noisy, labels, **options)
    rmi_only = {**options, "weight_lambda": 0.0}
    assert rmi_loss(perfect, labels, **rmi_only) < rmi_loss(noisy, labels, **rmi_only)
    # A perfect prediction sits close to the bound: the loss is negative.
    assert rmi_loss(perfect, labels, **rmi_only) < 0.9 * 3 * BOUND


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
def test_absent_classes_sit_at_the_floor_with_zero_gradient(pool: str) -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 16, 16, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 2, (2, 16, 16), generator=gen)  # class 2 never appears
    labels[1] = 0  # class 0 fills image 1, so class 1 is absent there
    per_class = rmi_per_class(logits, labels, num_classes=3, pool=pool, pool_size=2)
    for b, c in [(0, 2), (1, 2), (1, 1)]:
        assert per_class[b, c].item() == pytest.approx(FLOOR, abs=1e-12)
        (grad,) = torch.autograd.grad(per_class[b, c], logits, retain_graph=True)
        assert grad.abs().max().item() == 0.0
    # Without zero padding (nearest), a class that fills the image is constant too. Avg/max pad
    # with zeros, so its border cells differ and it is only near the floor.
    if pool == "nearest":
        assert per_class[1, 0].item() == pytest.approx(FLOOR, abs=1e-12)


def test_lambda_way_zero_adds_the_weighted_rmi() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(1, 2, 12, 12, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 2, (1, 12, 12), generator=gen)
    options = {"num_classes": 2, "pool_size": 2}
    bce = rmi_loss(logits, labels, weight_lambda=1.0, **options)
    rmi = rmi_loss(logits, labels, weight_lambda=0.0, **options)
    way0 = rmi_loss(logits, labels, weight_lambda=0.25, lambda_way=0, **options)
    way1 = rmi_loss(logits, labels, weight_lambda=0.25, **options)
    assert way0.item() == pytest.approx((bce + 0.25 * rmi).item(), rel=1e-12)
    assert way1.item() == pytest.approx((0.25 * bce + 0.75 * rmi).item(), rel=1e-12)
    # lambda_way 0 has no upper bound on the weight (the released code has none either).
    heavy = rmi_loss(logits, labels, weight_lambda=3.0, lambda_way=0, **options)
    assert heavy.item() == pytest.approx((bce + 3.0 * rmi).item(), rel=1e-12)


def test_bce_alone_needs_no_region_sized_map() -> None:
    """weight_lambda = 1 puts no weight on RMI: a map smaller than R x R after pooling is fine."""
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 2, 5, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 2, (1, 5, 5), generator=gen)
    value = rmi_loss(logits, labels, num_classes=2, weight_lambda=1.0)  # 5x5 / 4 -> 2x2 < 3x3
    assert torch.isfinite(value)
