"""The learning-rate schedule (recipe section 4): exact values of warm-up, poly decay, floor."""

from __future__ import annotations

import pytest

from rmi_cli.config import TrainConfig
from rmi_cli.engine.schedule import learning_rate, schedule_from_config

CAMVID = {"lr": 0.025, "max_iter": 6000, "warmup_iters": 300, "warmup_lr": 1e-4}


def test_warm_up_is_linear_from_warmup_lr_to_lr() -> None:
    assert learning_rate(0, **CAMVID) == pytest.approx(1e-4, abs=0, rel=1e-15)
    assert learning_rate(150, **CAMVID) == pytest.approx(1e-4 + 0.5 * (0.025 - 1e-4), rel=1e-15)
    assert learning_rate(299, **CAMVID) == pytest.approx(
        1e-4 + 299 / 300 * (0.025 - 1e-4), rel=1e-15
    )


def test_poly_decay_after_warm_up() -> None:
    assert learning_rate(300, **CAMVID) == 0.025
    assert learning_rate(3150, **CAMVID) == pytest.approx(0.025 * 0.5**0.9, rel=1e-15)
    t = 4567
    expected = 0.025 * (1 - (t - 300) / (6000 - 300)) ** 0.9
    assert learning_rate(t, **CAMVID) == pytest.approx(expected, rel=1e-15)


def test_floor_at_min_lr_and_past_the_end() -> None:
    assert learning_rate(5999, **CAMVID) == pytest.approx(0.025 * (1 / 5700) ** 0.9, rel=1e-15)
    assert learning_rate(6000, **CAMVID) == 1e-6
    assert learning_rate(7000, **CAMVID) == 1e-6
    assert learning_rate(10, lr=0.01, max_iter=100, min_lr=0.02) == 0.02


def test_no_warm_up_starts_at_lr() -> None:
    assert learning_rate(0, lr=0.007, max_iter=30000) == 0.007
    assert learning_rate(15000, lr=0.007, max_iter=30000, power=1.0) == pytest.approx(0.0035)


def test_negative_step_is_refused() -> None:
    with pytest.raises(ValueError, match="step"):
        learning_rate(-1, lr=0.1, max_iter=10)


def test_schedule_from_config_uses_every_field() -> None:
    train = TrainConfig(
        iterations=6000, lr=0.025, warmup_iters=300, warmup_lr=1e-4, poly_power=0.9, min_lr=1e-6
    )
    for t in (0, 17, 299, 300, 301, 4000, 5999, 6000):
        assert schedule_from_config(train, t) == learning_rate(t, **CAMVID)
