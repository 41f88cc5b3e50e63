"""The learning-rate schedule of the recipe (section 4): linear warm-up, then poly decay."""

from __future__ import annotations

from rmi_cli.config import TrainConfig


def learning_rate(
    step: int,
    *,
    lr: float,
    max_iter: int,
    warmup_iters: int = 0,
    warmup_lr: float = 1e-4,
    power: float = 0.9,
    min_lr: float = 1e-6,
) -> float:
    """The base learning rate of optimiser step `step` (0-based: steps done before this one).

    Warm-up ramps linearly from `warmup_lr` (at step 0) towards `lr` over `warmup_iters`
    steps; afterwards `lr * (1 - (step - warmup)/(max_iter - warmup))^power`. Both phases are
    floored at `min_lr`, as the released code's `max(lr, end_lr)` does.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0; found {step}")
    if step < warmup_iters:
        rate = warmup_lr + (lr - warmup_lr) * step / warmup_iters
    else:
        progress = min(1.0, (step - warmup_iters) / (max_iter - warmup_iters))
        rate = lr * (1.0 - progress) ** power
    return max(rate, min_lr)


def schedule_from_config(train: TrainConfig, step: int) -> float:
    """`learning_rate` with every parameter taken from a run's training configuration."""
    return learning_rate(
        step,
        lr=train.lr,
        max_iter=train.iterations,
        warmup_iters=train.warmup_iters,
        warmup_lr=train.warmup_lr,
        power=train.poly_power,
        min_lr=train.min_lr,
    )
