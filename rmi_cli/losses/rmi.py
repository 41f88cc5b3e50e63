"""The Region Mutual Information loss, BCE + RMI (Zhao et al., NeurIPS 2019, Eq. 16).

The numerics are those of the authors' released code, which produced the paper's tables
(`../shared/docs/rmi-recipe.md` section 1): sigmoid BCE summed over valid pixels and classes
divided by (valid pixels + 1); p = sigmoid * valid + 1e-6; avg|max|nearest downsampling with
pool size = stride; R x R region vectors from the valid region of the pooled maps; float64,
unnormalised scatter matrices; 5e-4 added twice; Cholesky log det with +1e-8; 0.5 logdet / R^2
per (image, class); batch mean, then sum over classes;
`weight_lambda * bce + (1 - weight_lambda) * rmi` (lambda_way 1) or `bce + weight_lambda * rmi`.

Why the loss is often negative: the RMI term of one (image, class) is
0.5 * log det(M) / R^2 = -I_l (Eq. 14), the negated lower bound of the mutual information, and
M = Syy - Syp (Spp + aI)^-1 Syp^T + aI >= aI with a = 5e-4. So each term is bounded below by
0.5 * ln(5e-4) = -3.80, not by 0: a class absent from an image (or filling it) sits at that
bound, a good prediction comes close to it, and with 21 classes the sum easily reaches -40. The
value is meaningful only up to that constant; its gradient is what trains the model.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from rmi_cli.constants import IGNORE_INDEX
from rmi_cli.errors import LossOptionError
from rmi_cli.losses.base import LOCAL, BatchShare, SegLoss, check_inputs, valid_mask, work_dtype
from rmi_cli.losses.region import RegionScatter, rmi_from_scatter
from rmi_cli.losses.rmi_pixel_terms import PixelTerms, Pooling, pool_labels

POOL_WAYS = ("avg", "max", "nearest")
MAX_RADIUS = 10
MAX_POOL_SIZE = 10


def check_rmi_options(radius: int, pool: str, pool_size: int) -> Pooling:
    """Validate the region options (recipe 1, "Options") and return the pooling."""
    if isinstance(radius, bool) or not isinstance(radius, int) or not 1 <= radius <= MAX_RADIUS:
        raise LossOptionError(
            f"RMI radius must be an integer in 1..{MAX_RADIUS} (the side R of the R x R region); "
            f"found {radius!r}"
        )
    if pool not in POOL_WAYS:
        raise LossOptionError(f"RMI pool must be one of {', '.join(POOL_WAYS)}; found {pool!r}")
    if (
        isinstance(pool_size, bool)
        or not isinstance(pool_size, int)
        or not 1 <= pool_size <= MAX_POOL_SIZE
    ):
        raise LossOptionError(
            f"RMI pool_size must be an integer in 1..{MAX_POOL_SIZE} (1: no downsampling); "
            f"found {pool_size!r}"
        )
    return Pooling(pool, pool_size)


def check_weights(weight_lambda: float, lambda_way: int) -> None:
    """Validate the BCE/RMI weighting of Eq. 16: lambda in [0, 1] for lambda_way 1 (a convex
    mix), any lambda >= 0 for lambda_way 0 (bce + lambda * rmi, unbounded in the released code)."""
    if lambda_way not in (0, 1) or isinstance(lambda_way, bool):
        raise LossOptionError(
            f"RMI lambda_way must be 0 (bce + lambda * rmi) or 1 "
            f"(lambda * bce + (1 - lambda) * rmi); found {lambda_way!r}"
        )
    if lambda_way == 1 and not 0.0 <= float(weight_lambda) <= 1.0:
        raise LossOptionError(
            f"RMI weight_lambda must be in [0, 1] with lambda_way 1; found {weight_lambda!r} "
            f"(lambda_way 0 takes any weight >= 0)"
        )
    if not 0.0 <= float(weight_lambda) < float("inf"):
        raise LossOptionError(
            f"RMI weight_lambda must be a finite number >= 0; found {weight_lambda!r}"
        )


def _check_map(height: int, width: int, pooling: Pooling, radius: int) -> None:
    pooled_h, pooled_w = pooling.out_size(height, width)
    if pooled_h < radius or pooled_w < radius:
        raise LossOptionError(
            f"RMI needs a pooled map of at least R x R: input {height}x{width} pooled by "
            f"{pooling.way}/{pooling.size} gives {pooled_h}x{pooled_w}, smaller than the region "
            f"R={radius}; use a smaller pool_size or radius, or larger images"
        )


def _rmi_parts(
    logits: Tensor,
    labels: Tensor,
    *,
    num_classes: int,
    region: tuple[int, str, int],
    ignore_index: int,
    with_rmi: bool = True,
    share: BatchShare = LOCAL,
) -> tuple[Tensor, Tensor | None, Tensor | int]:
    """(BCE term (float64 scalar), per-(image, class) RMI (B, C) float64, fallback count)."""
    radius, pool, pool_size = region
    pooling = check_rmi_options(radius, pool, pool_size)
    classes = check_inputs(logits, labels, num_classes)
    if with_rmi:  # BCE alone (weight 0 on RMI) works on maps of any size
        _check_map(logits.shape[-2], logits.shape[-1], pooling, radius)
    dtype = work_dtype(logits)
    valid = valid_mask(labels, classes, ignore_index)
    bce_sum, probs = PixelTerms.apply(
        logits, labels, classes, ignore_index, pooling if with_rmi else None, dtype
    )
    # recipe 1.2: divided by (valid pixels + 1), the pixels of the whole (global) batch
    bce = bce_sum / (share.total(valid.sum()) + 1)
    if not with_rmi:
        return bce, None, 0
    targets = pool_labels(labels, valid, classes, pooling, dtype)
    scatter = RegionScatter.apply(targets.flatten(0, 1), probs.flatten(0, 1), radius)
    per_class, fallbacks = rmi_from_scatter(scatter, radius * radius)
    return bce, per_class.view(logits.shape[0], classes), fallbacks


def _combine(
    bce: Tensor,
    per_class: Tensor | None,
    weights: tuple[float, int],
    share: BatchShare = LOCAL,
) -> Tensor:
    """Eq. 16 with the released code's two weightings; rmi = batch mean, then class sum. The
    batch is the global one: this rank's images summed, divided by every rank's image count."""
    weight_lambda, lambda_way = weights
    rmi: Tensor | float = 0.0
    if per_class is not None:
        if share.sum_ranks is None:
            rmi = per_class.mean(0).sum()
        else:
            images = share.total(torch.tensor(per_class.shape[0], device=per_class.device))
            rmi = (per_class.sum(0) / images).sum()
    if lambda_way == 1:
        return weight_lambda * bce + (1.0 - weight_lambda) * rmi
    return bce + weight_lambda * rmi


def _rmi_weight(weight_lambda: float, lambda_way: int) -> float:
    return 1.0 - weight_lambda if lambda_way == 1 else weight_lambda


def rmi_per_class(
    logits: Tensor,
    labels: Tensor,
    *,
    num_classes: int,
    radius: int = 3,
    pool: str = "avg",
    pool_size: int = 4,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """The RMI term of every (image, class), 0.5 * logdet(M) / R^2 = -I_l (Eq. 14): (B, C).

    float64, differentiable, each value >= 0.5 * ln(5e-4); `rmi_loss`'s RMI term is
    `rmi_per_class(...).mean(0).sum()`. For diagnostics (which classes the loss works on).
    """
    _, per_class, _ = _rmi_parts(
        logits,
        labels,
        num_classes=num_classes,
        region=(radius, pool, pool_size),
        ignore_index=ignore_index,
    )
    assert per_class is not None
    return per_class


def rmi_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    num_classes: int,
    radius: int = 3,
    pool: str = "avg",
    pool_size: int = 4,
    weight_lambda: float = 0.5,
    lambda_way: int = 1,
    ignore_index: int = IGNORE_INDEX,
    share: BatchShare = LOCAL,
) -> Tensor:
    """BCE + RMI (Eq. 16) of logits (B, C, H, W) against labels (B, H, W): a scalar.

    The result is float64 for float64 logits and float32 otherwise (float16/bfloat16 logits are
    computed in float32; the region statistics are float64 always). `weight_lambda=1` gives the
    BCE term alone, `0` the RMI term alone (lambda_way 1). Often negative: see the module doc.
    A matrix that fails its Cholesky factorisation is repaired (`region.cholesky_with_fallback`);
    `RMILoss.fallback_count` counts those events, this function does not report them.
    """
    return _rmi_objective(
        logits,
        labels,
        num_classes=num_classes,
        region=(radius, pool, pool_size),
        weights=(weight_lambda, lambda_way),
        ignore_index=ignore_index,
        share=share,
    )[0]


def _rmi_objective(
    logits: Tensor,
    labels: Tensor,
    *,
    num_classes: int,
    region: tuple[int, str, int],
    weights: tuple[float, int],
    ignore_index: int,
    share: BatchShare = LOCAL,
) -> tuple[Tensor, Tensor | int]:
    weight_lambda, lambda_way = weights
    check_weights(weight_lambda, lambda_way)
    bce, per_class, fallbacks = _rmi_parts(
        logits,
        labels,
        num_classes=num_classes,
        region=region,
        ignore_index=ignore_index,
        with_rmi=_rmi_weight(weight_lambda, lambda_way) != 0.0,
        share=share,
    )
    total = _combine(bce, per_class, weights, share)
    return total.to(work_dtype(logits)), fallbacks


class RMILoss(SegLoss):
    """BCE + RMI as a module; `fallback_count` counts Cholesky fallbacks (for logging)."""

    def __init__(
        self,
        *,
        num_classes: int,
        ignore_index: int = IGNORE_INDEX,
        radius: int = 3,
        pool: Literal["avg", "max", "nearest"] = "avg",
        pool_size: int = 4,
        weight_lambda: float = 0.5,
        lambda_way: int = 1,
    ) -> None:
        super().__init__(num_classes=num_classes, ignore_index=ignore_index)
        check_rmi_options(radius, pool, pool_size)
        check_weights(weight_lambda, lambda_way)
        self.region = (radius, pool, pool_size)
        self.weights = (float(weight_lambda), lambda_way)

    def forward(
        self, logits: Tensor, labels: Tensor, *, progress: float = 0.0, share: BatchShare = LOCAL
    ) -> Tensor:
        loss, fallbacks = _rmi_objective(
            logits,
            labels,
            num_classes=self.num_classes,
            region=self.region,
            weights=self.weights,
            ignore_index=self.ignore_index,
            share=share,
        )
        self._fallbacks = self._fallbacks + fallbacks
        return loss

    def extra_repr(self) -> str:
        radius, pool, pool_size = self.region
        weight_lambda, lambda_way = self.weights
        return (
            f"{super().extra_repr()}, radius={radius}, pool={pool!r}, pool_size={pool_size}, "
            f"weight_lambda={weight_lambda}, lambda_way={lambda_way}"
        )
