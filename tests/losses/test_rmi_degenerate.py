"""Degenerate inputs never give NaN or a crash; the Cholesky fallback is counted."""

from __future__ import annotations

import pytest
import torch

from rmi_cli.losses import LOSSES, RMILoss, build_loss, region

C, H, W = 3, 13, 11


def degenerate_cases() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    random_labels = torch.randint(0, C, (2, H, W), generator=gen)
    random_logits = torch.randn(2, C, H, W, generator=gen)
    extreme = torch.where(torch.rand(2, C, H, W, generator=gen) < 0.5, -50.0, 50.0)
    onehot = torch.nn.functional.one_hot(random_labels, C).permute(0, 3, 1, 2).float()
    return {
        "all_ignored": (random_logits, torch.full((2, H, W), 255)),
        "one_class": (random_logits, torch.zeros(2, H, W, dtype=torch.long)),
        "constant_logits": (torch.zeros(2, C, H, W), random_labels),
        "extreme_logits": (extreme, random_labels),
        "perfect_extreme": (50 * (2 * onehot - 1), random_labels),
        "out_of_range_labels": (random_logits, random_labels + 2 * C),
    }


CASES = degenerate_cases()


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_finite_loss_and_gradient(name: str, case: str, dtype: torch.dtype) -> None:
    logits, labels = CASES[case]
    options = {"pool_size": 2} if name == "rmi" else {"downsample": 2} if name == "aaf" else {}
    loss_fn = build_loss(name, num_classes=C, **options)
    x = logits.detach().to(dtype).clone().requires_grad_(True)
    loss = loss_fn(x, labels)
    loss.backward()
    assert torch.isfinite(loss), f"{name} on {case} ({dtype}) gave {loss}"
    assert x.grad is not None and x.grad.dtype == dtype
    assert torch.isfinite(x.grad).all()
    assert loss_fn.fallback_count == 0


@pytest.mark.parametrize("pool", ["avg", "max", "nearest"])
@pytest.mark.parametrize("radius", [1, 3])
def test_tiny_images_that_just_fit_the_region(pool: str, radius: int) -> None:
    # The smallest input whose pooled map is R x R, for pool size 4.
    size = 4 * radius if pool == "nearest" else 4 * radius - 2
    logits = torch.randn(1, 2, size, size, requires_grad=True)
    labels = torch.randint(0, 2, (1, size, size))
    loss = RMILoss(num_classes=2, radius=radius, pool=pool)(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_fallback_lifts_an_indefinite_matrix_and_counts_it() -> None:
    good = torch.eye(3, dtype=torch.float64)
    bad = torch.diag(torch.tensor([1.0, -1e-3, 2.0], dtype=torch.float64))
    chol, failed = region.cholesky_with_fallback(torch.stack([good, bad]))
    assert failed == 1
    assert torch.equal(chol[0], good)
    # Lifted by 5e-4 + 1e-3 so that the smallest eigenvalue becomes 5e-4.
    assert chol[1].diagonal().pow(2).tolist() == pytest.approx([1.0015, 5e-4, 2.0015])
    nan = torch.full((3, 3), float("nan"), dtype=torch.float64)
    chol, failed = region.cholesky_with_fallback(nan.unsqueeze(0))
    assert failed == 1 and torch.isfinite(chol).all()


def test_rmi_module_counts_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    real = torch.linalg.cholesky_ex

    def first_matrix_fails(matrices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        chol, info = real(matrices)
        return chol, torch.where(torch.arange(len(info)) == 0, 1, info).to(info.dtype)

    loss_fn = RMILoss(num_classes=2, pool_size=2)
    logits = torch.randn(2, 2, 16, 16, requires_grad=True)
    labels = torch.randint(0, 2, (2, 16, 16))
    monkeypatch.setattr(torch.linalg, "cholesky_ex", first_matrix_fails)
    loss = loss_fn(logits, labels)
    loss.backward()
    # Two factorisations per call (Spp + aI and M) each report one failure.
    assert loss_fn.fallback_count == 2
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
