"""The fast RMI path against the slow float64 reference (`rmi_reference.py`)."""

from __future__ import annotations

import pytest
import rmi_reference as ref
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rmi_cli.losses import region, rmi_loss, rmi_pixel_terms
from rmi_cli.losses.rmi import _rmi_parts


@st.composite
def cases(draw: st.DrawFn) -> dict:
    """Random shapes (odd sizes too), pools, radii 1-5, pool sizes 1-6 and ignored pixels."""
    radius = draw(st.integers(1, 5))
    pool_size = draw(st.integers(1, 6))
    pool = draw(st.sampled_from(["avg", "max", "nearest"]))
    # Smallest input whose pooled map is R x R, plus a little.
    base = radius * pool_size
    height = base + draw(st.integers(0, 2 * pool_size + 1))
    width = base + draw(st.integers(0, 2 * pool_size + 1))
    return {
        "shape": (draw(st.integers(1, 2)), draw(st.integers(1, 3)), height, width),
        "radius": radius,
        "pool": pool,
        "pool_size": pool_size,
        "ignored": draw(st.sampled_from([0.0, 0.1, 0.4])),
        "seed": draw(st.integers(0, 2**16)),
    }


def make_inputs(case: dict, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(case["seed"])
    batch, classes, height, width = case["shape"]
    logits = (torch.randn(case["shape"], generator=gen, dtype=torch.float64) * 3).to(dtype)
    labels = torch.randint(0, classes, (batch, height, width), generator=gen)
    labels[torch.rand(labels.shape, generator=gen) < case["ignored"]] = 255
    labels[torch.rand(labels.shape, generator=gen) < case["ignored"] / 4] = classes  # >= C
    return logits, labels


def options(case: dict) -> dict:
    return {key: case[key] for key in ("radius", "pool", "pool_size")}


@settings(max_examples=40, deadline=None, derandomize=True)
@given(cases())
def test_float64_matches_reference_to_1e9(case: dict) -> None:
    logits, labels = make_inputs(case, torch.float64)
    classes = case["shape"][1]
    region_opts = (case["radius"], case["pool"], case["pool_size"])
    bce, per_class, fallbacks = _rmi_parts(
        logits, labels, num_classes=classes, region=region_opts, ignore_index=255
    )
    ref_bce, ref_per_class = ref.rmi_parts(logits, labels, **options(case))
    assert int(fallbacks) == 0
    torch.testing.assert_close(bce, ref_bce, rtol=1e-9, atol=1e-12)
    assert per_class is not None
    torch.testing.assert_close(per_class, ref_per_class, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
@pytest.mark.parametrize("radius", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("pool_size", [1, 2, 3, 4, 5, 6])
def test_every_option_combination_matches_reference(pool: str, radius: int, pool_size: int) -> None:
    # Odd, non-square sizes a little above the smallest that fits, so border cells are partial.
    extra = (radius + pool_size) % 3
    case = {
        "shape": (2, 3, radius * pool_size + extra + 1, radius * pool_size + 2 * extra + 2),
        "radius": radius,
        "pool": pool,
        "pool_size": pool_size,
        "ignored": 0.15,
        "seed": 100 * radius + pool_size,
    }
    logits, labels = make_inputs(case, torch.float64)
    bce, per_class, _ = _rmi_parts(
        logits, labels, num_classes=3, region=(radius, pool, pool_size), ignore_index=255
    )
    ref_bce, ref_per_class = ref.rmi_parts(logits, labels, **options(case))
    torch.testing.assert_close(bce, ref_bce, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(per_class, ref_per_class, rtol=1e-9, atol=1e-12)
    loss32 = rmi_loss(logits.float(), labels, num_classes=3, **options(case))
    expected = 0.5 * ref_bce + 0.5 * ref_per_class.mean(0).sum()
    torch.testing.assert_close(loss32.double(), expected, rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(cases(), st.sampled_from([(0.5, 1), (0.0, 1), (1.0, 1), (0.3, 0)]))
def test_float32_matches_reference_to_1e5(case: dict, weights: tuple[float, int]) -> None:
    logits, labels = make_inputs(case, torch.float32)
    weight_lambda, lambda_way = weights
    loss = rmi_loss(
        logits,
        labels,
        num_classes=case["shape"][1],
        weight_lambda=weight_lambda,
        lambda_way=lambda_way,
        **options(case),
    )
    expected = ref.rmi_loss(
        logits.double(), labels, weight_lambda=weight_lambda, lambda_way=lambda_way, **options(case)
    )
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
def test_chunked_paths_give_the_same_loss_and_gradient(
    pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 4, 29, 27, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 5, (3, 29, 27), generator=gen)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        loss = rmi_loss(logits, labels, num_classes=4, pool=pool, pool_size=2)
        (grad,) = torch.autograd.grad(loss, logits)
        return loss, grad

    whole = run()
    # One image per pixel chunk, one row of windows per statistics band.
    monkeypatch.setattr(rmi_pixel_terms, "CHUNK_BYTES", 1)
    monkeypatch.setattr(region, "STATS_CHUNK_BYTES", 1)
    chunked = run()
    torch.testing.assert_close(chunked[0], whole[0], rtol=1e-12, atol=0)
    torch.testing.assert_close(chunked[1], whole[1], rtol=1e-10, atol=1e-15)


def test_gradient_matches_reference_autograd() -> None:
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 3, 17, 19, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (2, 17, 19), generator=gen)
    labels[:, :2] = 255
    for pool in ("avg", "max", "nearest"):
        (fast,) = torch.autograd.grad(
            rmi_loss(logits, labels, num_classes=3, pool=pool, pool_size=3, radius=2), logits
        )
        (slow,) = torch.autograd.grad(
            ref.rmi_loss(logits, labels, pool=pool, pool_size=3, radius=2), logits
        )
        torch.testing.assert_close(fast, slow, rtol=1e-7, atol=1e-12)
